// The operator registry: who may ask for PII to be recovered (pii-requester) and who may
// approve (pii-approver), each with an Ed25519 public key. PII_OPERATORS_FILE is JSON
// Lines, one {"name", "roles", "publicKey"} a line; parseRegistry says which line is wrong
// and how. Also the operator's side of the keys: making a key pair with its registry line,
// and writing and reading the private key (owner-only, never overwritten).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { decodeStrictBase64 } from '../platform/base64';
import { isPlainObject, kindOf } from '../platform/guards';

export type Role = 'pii-requester' | 'pii-approver';
export const ROLES: readonly Role[] = ['pii-requester', 'pii-approver'];

export interface Operator {
  name: string;
  roles: Role[];
  /** base64 of the raw 32-byte Ed25519 public key. */
  publicKey: string;
}

export interface OperatorRegistry {
  byName: ReadonlyMap<string, Operator>;
}

export class RegistryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryError';
  }
}

/** What an operator name may be (the audit trail's actors are these names). */
export const OPERATOR_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const OPERATOR_FIELDS = ['name', 'publicKey', 'roles'];

/** Imports a base64 raw Ed25519 public key; null when it is not one. */
export function ed25519PublicKey(value: unknown): crypto.KeyObject | null {
  const raw = decodeStrictBase64(value, 32);
  if (!raw) return null;
  try {
    return crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  } catch {
    return null;
  }
}

/** What is wrong with an operator name, or null. */
export function nameProblem(name: unknown): string | null {
  if (typeof name !== 'string') return `name must be a string, got ${kindOf(name)}`;
  return OPERATOR_NAME.test(name) ? null : `name ${JSON.stringify(name.slice(0, 80))} must match ${OPERATOR_NAME}`;
}

/** What is wrong with a role list, or null. */
function rolesProblem(roles: unknown): string | null {
  if (!Array.isArray(roles)) return `roles must be an array, got ${kindOf(roles)}`;
  if (roles.length === 0) return `roles must name at least one of ${ROLES.join(', ')}`;
  for (const role of roles) {
    if (!ROLES.includes(role as Role)) return `unknown role ${JSON.stringify(role)} (known: ${ROLES.join(', ')})`;
  }
  if (new Set(roles).size !== roles.length) return 'roles lists a role twice';
  return null;
}

/**
 * Parses a registry: JSON Lines, one `{"name", "roles", "publicKey"}` a line; blank lines
 * and lines starting with `#` are skipped. Every problem is a RegistryError naming
 * `source`, the line and what is wrong.
 */
export function parseRegistry(text: string, source: string): OperatorRegistry {
  const byName = new Map<string, Operator>();
  const lineOfName = new Map<string, number>();
  const lineOfKey = new Map<string, number>();
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((rawLine, index) => {
    const lineNo = index + 1;
    const fail = (problem: string): never => {
      throw new RegistryError(`${source}: line ${lineNo}: ${problem}`);
    };
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) return;
    let entry: unknown;
    try {
      entry = JSON.parse(line);
    } catch (err) {
      // Without the excerpt of the line that JSON.parse quotes: a line may be key material pasted in the wrong place.
      fail(`not valid JSON (${(err as Error).message.replace(/, ".*"(\.\.\.)? is not valid JSON$/s, '')})`);
    }
    if (!isPlainObject(entry)) return fail(`expected an object {"name", "roles", "publicKey"}, got ${kindOf(entry)}`);
    const unknown = Object.keys(entry).filter((k) => !OPERATOR_FIELDS.includes(k));
    if (unknown.length) fail(`unknown field ${JSON.stringify(unknown[0])} (expected name, roles, publicKey)`);
    for (const field of OPERATOR_FIELDS) if (!Object.hasOwn(entry, field)) fail(`missing field ${JSON.stringify(field)}`);
    const problem = nameProblem(entry.name) ?? rolesProblem(entry.roles);
    if (problem) fail(problem);
    const name = entry.name as string;
    if (lineOfName.has(name)) fail(`operator ${JSON.stringify(name)} is already defined on line ${lineOfName.get(name)}`);
    if (!ed25519PublicKey(entry.publicKey)) fail(`publicKey of ${name} must be a raw 32-byte Ed25519 public key, base64-encoded`);
    const publicKey = entry.publicKey as string;
    if (lineOfKey.has(publicKey))
      fail(`publicKey of ${name} is already the key of the operator on line ${lineOfKey.get(publicKey)}`);
    lineOfName.set(name, lineNo);
    lineOfKey.set(publicKey, lineNo);
    byName.set(name, Object.freeze({ name, roles: Object.freeze([...(entry.roles as Role[])]) as Role[], publicKey }));
  });
  return { byName };
}

/** Reads and parses the registry file named by PII_OPERATORS_FILE. */
export function loadRegistry(file: string): OperatorRegistry {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new RegistryError(`PII_OPERATORS_FILE=${file} cannot be read: ${(err as Error).message}`);
  }
  return parseRegistry(text, `PII_OPERATORS_FILE (${file})`);
}

/** SHA-256 (hex) of an operator's raw public key: names the key that made a signature in the audit trail. */
export function keyFingerprint(publicKey: string): string {
  return crypto.createHash('sha256').update(Buffer.from(publicKey, 'base64')).digest('hex');
}

export function hasRole(op: Operator, role: Role): boolean {
  return op.roles.includes(role);
}

/** A new Ed25519 key pair for an operator and the registry line that enrols it. */
export function generateOperatorKeys(
  name: string,
  roles: Role[],
): { privateKeyPem: string; publicKey: string; registryLine: string } {
  const problem = nameProblem(name) ?? rolesProblem(roles);
  if (problem) throw new RegistryError(problem);
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('base64');
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicKey: raw,
    registryLine: JSON.stringify({ name, roles: [...roles], publicKey: raw }),
  };
}

/**
 * Why a new operator must not be appended to a registry whose text is `text` (read from
 * `source`), or null: the registry already has a bad line, the name is taken, or the key
 * is (a duplicate line would make every recovery fail with registry_invalid).
 */
export function registrationProblem(
  text: string,
  source: string,
  candidate: Pick<Operator, 'name' | 'publicKey'>,
): string | null {
  let registry: OperatorRegistry;
  try {
    registry = parseRegistry(text, source);
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
    return `${err.message}. Fix that line first: no line is added to a registry that is already invalid.`;
  }
  if (registry.byName.has(candidate.name))
    return (
      `${source} already has an operator named ${JSON.stringify(candidate.name)}: choose another name, ` +
      'or, to give that operator a new key, remove their line from the file first (and move their old private key away).'
    );
  const holder = [...registry.byName.values()].find((op) => op.publicKey === candidate.publicKey);
  if (holder)
    return `${source} already has this public key, as operator ${JSON.stringify(holder.name)}: each operator needs a key of its own.`;
  return null;
}

/** Refuses (RegistryError) to enrol `candidate` in the registry `file` (which may not exist yet); see registrationProblem. */
export function checkRegistration(file: string, name: string, publicKey: string): void {
  const candidate = { name, publicKey };
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new RegistryError(`PII_OPERATORS_FILE=${file} cannot be read: ${(err as Error).message}`);
  }
  const problem = registrationProblem(text, `PII_OPERATORS_FILE (${file})`, candidate);
  if (problem) throw new RegistryError(`Refusing to register ${candidate.name}: ${problem} Nothing was written.`);
}

/** Writes a private key readable by its owner only (0600, folder 0700); never overwrites a file. */
export function writePrivateKey(file: string, pem: string): void {
  try {
    if (crypto.createPrivateKey(pem).type !== 'private') throw new Error('not a private key');
  } catch (err) {
    throw new Error(`Refusing to write ${file}: the content is not a PEM private key (${(err as Error).message})`);
  }
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new Error(`${file} already exists: a private key is never overwritten (move it away first)`);
    throw err;
  }
  try {
    fs.fchmodSync(fd, 0o600); // whatever the umask
    fs.writeFileSync(fd, pem);
    fs.closeSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true }); // a half-written key is worse than none
    throw err;
  }
}

/** Reads an operator's Ed25519 private key (PKCS#8 or other PEM Node reads, unencrypted). */
export function readPrivateKey(file: string): crypto.KeyObject {
  let pem: string;
  try {
    pem = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`Private key file ${file} cannot be read: ${(err as Error).message}`);
  }
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(pem);
  } catch (err) {
    throw new Error(`${file} is not an unencrypted PEM private key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw new Error(`${file} holds a ${key.asymmetricKeyType ?? 'unknown'} key; operators sign with Ed25519`);
  return key;
}
