// Who may ask for PII to be recovered, and who may approve: a registry of operators with
// their roles and Ed25519 public keys, and the signed request and approval documents.
// Every request and approval is signed over a canonical JSON encoding of its body, so the
// audit trail proves who asked for what and who agreed, and nobody (not the workflow, not
// another operator) can alter a document or speak for someone else. Role and replay
// checks belong to the workflow; this file only says whether a document is well formed,
// authentic and fresh. It uses node:crypto and node:fs, so it runs in activities and
// tools, never in workflow code.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseRecipientPublicKey } from '../pii/sealed';

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

const OPERATOR_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const OPERATOR_FIELDS = ['name', 'publicKey', 'roles'];

const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

const kindOf = (v: unknown): string => (Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v);

/** base64 that decodes to exactly `bytes` bytes and is written the one canonical way; null otherwise. */
function decodeBase64(value: unknown, bytes: number): Buffer | null {
  if (typeof value !== 'string' || value.length > 4 * Math.ceil(bytes / 3)) return null;
  const decoded = Buffer.from(value, 'base64');
  return decoded.length === bytes && decoded.toString('base64') === value ? decoded : null;
}

/** Imports a base64 raw Ed25519 public key; null when it is not one. */
function ed25519PublicKey(value: unknown): crypto.KeyObject | null {
  const raw = decodeBase64(value, 32);
  if (!raw) return null;
  try {
    return crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  } catch {
    return null;
  }
}

/** What is wrong with an operator name, or null. */
function nameProblem(name: unknown): string | null {
  if (typeof name !== 'string') return `name must be a string, got ${kindOf(name)}`;
  return OPERATOR_NAME.test(name) ? null : `name ${JSON.stringify(name.slice(0, 80))} must match ${OPERATOR_NAME}`;
}

const prefixed = (prefix: string, problem: string | null): string | null => (problem === null ? null : prefix + problem);

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
      fail(`not valid JSON (${(err as Error).message})`);
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
    if (lineOfKey.has(publicKey)) fail(`publicKey of ${name} is already the key of the operator on line ${lineOfKey.get(publicKey)}`);
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
export function generateOperatorKeys(name: string, roles: Role[]): { privateKeyPem: string; publicKey: string; registryLine: string } {
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
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`${file} already exists: a private key is never overwritten (move it away first)`);
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
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${file} holds a ${key.asymmetricKeyType ?? 'unknown'} key; operators sign with Ed25519`);
  return key;
}

const MAX_CANONICAL_DEPTH = 64;

/**
 * The bytes that get signed: JSON with object keys sorted (by UTF-16 code units, as
 * RFC 8785) at every level and no whitespace. Only JSON values are accepted: plain objects,
 * arrays, strings, finite numbers, booleans and null; undefined, functions, symbols,
 * bigints, non-finite numbers, class instances (Date, Buffer, Map…), sparse arrays, cycles
 * and nesting deeper than 64 throw a TypeError instead of being silently dropped or
 * converted, so a signer and a verifier cannot disagree on what was signed.
 */
export function canonicalJson(value: unknown): string {
  const seen = new Set<object>();
  const encode = (v: unknown, at: string, depth: number): string => {
    if (v === null) return 'null';
    switch (typeof v) {
      case 'string':
        return JSON.stringify(v); // lone surrogates come out as \uXXXX escapes, so the UTF-8 is lossless
      case 'boolean':
        return v ? 'true' : 'false';
      case 'number':
        if (!Number.isFinite(v)) throw new TypeError(`canonicalJson: ${at} is ${v}, not a finite number`);
        return JSON.stringify(v);
      case 'object':
        break;
      default:
        throw new TypeError(`canonicalJson: ${at} is ${typeof v}, not a JSON value`);
    }
    const obj = v;
    if (depth >= MAX_CANONICAL_DEPTH) throw new TypeError(`canonicalJson: ${at} is nested deeper than ${MAX_CANONICAL_DEPTH}`);
    if (seen.has(obj)) throw new TypeError(`canonicalJson: ${at} refers back to an enclosing value (a cycle)`);
    seen.add(obj);
    let out: string;
    if (Array.isArray(obj)) {
      const parts: string[] = [];
      for (let i = 0; i < obj.length; i++) {
        if (!(i in obj)) throw new TypeError(`canonicalJson: ${at}[${i}] is a hole in a sparse array`);
        parts.push(encode(obj[i], `${at}[${i}]`, depth + 1));
      }
      out = `[${parts.join(',')}]`;
    } else {
      if (!isPlainObject(obj)) throw new TypeError(`canonicalJson: ${at} is not a plain JSON object (a ${obj.constructor?.name || 'object'} with another prototype)`);
      if (Object.getOwnPropertySymbols(obj).length) throw new TypeError(`canonicalJson: ${at} has symbol keys`);
      const record = obj;
      const keys = Object.keys(record).sort();
      out = `{${keys.map((k) => `${JSON.stringify(k)}:${encode(record[k], `${at}.${k}`, depth + 1)}`).join(',')}}`;
    }
    seen.delete(obj);
    return out;
  };
  return encode(value, '$', 0);
}

export interface RecoveryRequestBody {
  type: 'pii-recovery-request';
  /** UUID v4, lower case. */
  requestId: string;
  /** Who asks. */
  operator: string;
  /** Free text, 10..1000 characters. */
  reason: string;
  /** Ticket reference, 1..64 of [A-Za-z0-9._#/-]. */
  ticket: string;
  selector: { messageIds: string[] } | { userId: string } | { fingerprint: string };
  fields: ('ip' | 'device_id' | 'body')[];
  /** base64 raw X25519 public key (32 bytes) the result is sealed to (lib/pii/sealed.ts). */
  recipientPublicKey: string;
  /** ISO 8601 with a time zone. */
  issuedAt: string;
}

export interface ApprovalBody {
  type: 'pii-recovery-approval';
  requestId: string;
  /** Who approves or denies. */
  operator: string;
  decision: 'approve' | 'deny';
  /**
   * The hash of the exact record set frozen at authorisation (lib/recovery/records.ts
   * recordSetHash: request ID, selector, fields and every record's table and message ID).
   * Required to approve: an approval covers those records and no others.
   */
  recordSetHash?: string;
  /** 1..1000 characters when present. */
  comment?: string;
  issuedAt: string;
}

export interface Signed<T> {
  body: T;
  /** base64 Ed25519 signature over canonicalJson(body). */
  signature: string;
}

/**
 * Signs `body` with an operator's Ed25519 private key. The returned body is the canonical
 * JSON parsed back: a copy holding exactly what was signed, whatever happens to `body` later.
 */
export function sign<T>(body: T, privateKey: crypto.KeyObject): Signed<T> {
  if (!(privateKey instanceof crypto.KeyObject) || privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') {
    throw new TypeError('sign needs an Ed25519 private KeyObject (see readPrivateKey)');
  }
  const canonical = canonicalJson(body);
  return { body: JSON.parse(canonical) as T, signature: crypto.sign(null, Buffer.from(canonical, 'utf8'), privateKey).toString('base64') };
}

export type VerifyFailure = 'unsigned' | 'malformed' | 'unknown_operator' | 'bad_signature' | 'stale' | 'from_the_future';
export type VerifyResult<T> = { ok: true; operator: Operator; body: T } | { ok: false; code: VerifyFailure; detail: string };

/** How far ahead of the verifier's clock a document may be dated (clock skew between machines). */
export const MAX_FUTURE_SKEW_MS = 2 * 60 * 1000;
/** Larger than any valid request (1000 message IDs of 128 characters) with room to spare. */
export const MAX_SIGNED_BODY_BYTES = 256 * 1024;
const SIGNATURE_BYTES = 64;
const ENVELOPE_FIELDS = ['body', 'signature'];

const ISO_INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-](\d{2}):(\d{2}))$/;

/** Milliseconds since the epoch of an ISO 8601 date-time with a time zone, or null (including impossible dates such as 02-30). */
function parseInstant(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  const m = ISO_INSTANT.exec(value);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  const calendar = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  if (calendar.getUTCFullYear() !== year || calendar.getUTCMonth() !== month - 1 || calendar.getUTCDate() !== day) return null;
  if (hour > 23 || minute > 59 || second > 59 || (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59))) return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}

/**
 * Checks a signed document received from outside: envelope shape, signature present, body
 * of `expectedType` and valid per `validateBody`, operator registered, signature made with
 * that operator's key over canonicalJson(body), issuedAt within `maxAgeMs` before `now` and
 * at most MAX_FUTURE_SKEW_MS after. Never throws: every problem is a failure code, checked
 * in that order. The body returned is a fresh copy of what the signature covers.
 */
export function verifySigned<T extends { operator: string; issuedAt: string; type: string }>(
  signed: unknown,
  expectedType: T['type'],
  registry: OperatorRegistry,
  now: Date,
  maxAgeMs: number,
  validateBody: (b: unknown) => string | null,
): VerifyResult<T> {
  const fail = (code: VerifyFailure, detail: string): VerifyResult<T> => ({ ok: false, code, detail });
  try {
    if (!(now instanceof Date) || !Number.isFinite(now.getTime()) || typeof maxAgeMs !== 'number' || !(maxAgeMs >= 0)) {
      return fail('malformed', 'verifier misconfigured: now must be a valid Date and maxAgeMs a number >= 0');
    }
    if (!isPlainObject(signed)) return fail('malformed', `expected a signed document {"body", "signature"}, got ${kindOf(signed)}`);
    const unknown = Object.keys(signed).filter((k) => !ENVELOPE_FIELDS.includes(k));
    if (unknown.length) return fail('malformed', `unexpected field ${JSON.stringify(unknown[0].slice(0, 80))} next to body and signature`);
    const signatureText = signed.signature;
    if (signatureText === undefined || signatureText === null || signatureText === '') return fail('unsigned', 'the document carries no signature');
    const signature = decodeBase64(signatureText, SIGNATURE_BYTES);
    if (!signature) return fail('malformed', `signature must be ${SIGNATURE_BYTES} bytes, base64-encoded`);

    // From here on only the canonical bytes and a copy parsed from them are used, so a
    // getter or proxy in the input cannot show one value to the checks and another to the
    // signature.
    let canonical: string;
    try {
      canonical = canonicalJson(signed.body);
    } catch (err) {
      return fail('malformed', `body is not plain JSON: ${(err as Error).message.slice(0, 200)}`);
    }
    if (Buffer.byteLength(canonical, 'utf8') > MAX_SIGNED_BODY_BYTES) return fail('malformed', `body is larger than ${MAX_SIGNED_BODY_BYTES} bytes`);
    const body: unknown = JSON.parse(canonical);
    if (!isPlainObject(body)) return fail('malformed', `body must be an object, got ${kindOf(body)}`);
    if (body.type !== expectedType) return fail('malformed', `expected a ${expectedType} document, got type ${JSON.stringify(String(body.type).slice(0, 80))}`);
    const problem = prefixed('operator ', nameProblem(body.operator)) ?? (parseInstant(body.issuedAt) === null ? 'issuedAt must be an ISO 8601 date-time with a time zone' : null) ?? validateBody(body);
    if (problem !== null) return fail('malformed', String(problem).slice(0, 500));
    const typed = body as unknown as T;

    const operator = registry.byName.get(typed.operator);
    if (!operator) return fail('unknown_operator', `operator ${JSON.stringify(typed.operator)} is not in the registry`);
    const key = ed25519PublicKey(operator.publicKey);
    if (!key) return fail('bad_signature', `the registered public key of ${operator.name} cannot be imported`);
    if (!crypto.verify(null, Buffer.from(canonical, 'utf8'), key, signature)) {
      return fail('bad_signature', `the signature is not ${operator.name}'s over this body`);
    }

    const issuedAt = parseInstant(typed.issuedAt)!;
    const ageMs = now.getTime() - issuedAt;
    if (ageMs > maxAgeMs) return fail('stale', `issued at ${typed.issuedAt}, ${Math.round(ageMs / 1000)} s ago; at most ${Math.round(maxAgeMs / 1000)} s are accepted`);
    if (-ageMs > MAX_FUTURE_SKEW_MS) return fail('from_the_future', `issued at ${typed.issuedAt}, ${Math.round(-ageMs / 1000)} s ahead of this clock; at most ${MAX_FUTURE_SKEW_MS / 1000} s are accepted`);
    return { ok: true, operator, body: typed };
  } catch (err) {
    // Only a hostile registry or validateBody can get here; fail closed.
    return fail('malformed', `could not verify: ${String((err as Error)?.message ?? err).slice(0, 200)}`);
  }
}

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TICKET = /^[A-Za-z0-9._#/-]{1,64}$/;
const FINGERPRINT = /^[0-9a-f]{64}$/;
const FIELDS = ['ip', 'device_id', 'body'] as const;
const MAX_MESSAGE_IDS = 1000;
/** Column width of message_id and user_id in prisma/schema.prisma. */
const MAX_ID_LENGTH = 128;

/** Free text may hold line breaks and tabs, not other control characters or lone surrogates. */
function freeTextProblem(value: unknown, field: string, min: number, max: number): string | null {
  if (typeof value !== 'string') return `${field} must be a string, got ${kindOf(value)}`;
  if (!value.isWellFormed()) return `${field} contains a lone surrogate`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(value)) return `${field} contains control characters`;
  const length = [...value.trim()].length;
  if (length < min || [...value].length > max) return `${field} must be ${min}..${max} characters (not counting surrounding blanks for the minimum)`;
  return null;
}

/** An identifier: 1..128 characters, no surrounding blanks, no control characters or lone surrogates. */
function idProblem(value: unknown, field: string): string | null {
  if (typeof value !== 'string') return `${field} must be a string, got ${kindOf(value)}`;
  if (value.length === 0 || value.length > MAX_ID_LENGTH) return `${field} must be 1..${MAX_ID_LENGTH} characters`;
  // eslint-disable-next-line no-control-regex
  if (value.trim() !== value || /[\u0000-\u001f\u007f-\u009f]/.test(value) || !value.isWellFormed()) return `${field} has surrounding blanks or invalid characters`;
  return null;
}

function fieldsProblem(body: Record<string, unknown>, required: string[], optional: string[] = []): string | null {
  for (const key of Object.keys(body)) {
    if (!required.includes(key) && !optional.includes(key)) return `unknown field ${JSON.stringify(key.slice(0, 80))}`;
  }
  for (const key of required) if (!Object.hasOwn(body, key)) return `missing field ${key}`;
  return null;
}

function selectorProblem(selector: unknown): string | null {
  if (!isPlainObject(selector)) return `selector must be an object, got ${kindOf(selector)}`;
  const kinds = Object.keys(selector);
  if (kinds.length !== 1) return `selector must have exactly one of messageIds, userId, fingerprint (has ${kinds.length ? kinds.map((k) => k.slice(0, 40)).join(', ') : 'none'})`;
  const [kind] = kinds;
  const value = selector[kind];
  switch (kind) {
    case 'messageIds': {
      if (!Array.isArray(value)) return `selector.messageIds must be an array, got ${kindOf(value)}`;
      if (value.length === 0 || value.length > MAX_MESSAGE_IDS) return `selector.messageIds must list 1..${MAX_MESSAGE_IDS} message IDs (has ${value.length})`;
      for (let i = 0; i < value.length; i++) {
        const problem = idProblem(value[i], `selector.messageIds[${i}]`);
        if (problem) return problem;
      }
      if (new Set(value).size !== value.length) return 'selector.messageIds lists a message ID twice';
      return null;
    }
    case 'userId':
      return idProblem(value, 'selector.userId');
    case 'fingerprint':
      return typeof value === 'string' && FINGERPRINT.test(value) ? null : 'selector.fingerprint must be a login fingerprint (64 lower-case hex digits)';
    default:
      return `selector kind ${JSON.stringify(kind.slice(0, 80))} is not one of messageIds, userId, fingerprint`;
  }
}

const REQUEST_FIELDS = ['type', 'requestId', 'operator', 'reason', 'ticket', 'selector', 'fields', 'recipientPublicKey', 'issuedAt'];

/** What is wrong with a recovery request body, or null when it is valid. Never throws for JSON input. */
export function validateRequestBody(b: unknown): string | null {
  if (!isPlainObject(b)) return `request body must be an object, got ${kindOf(b)}`;
  const shape = fieldsProblem(b, REQUEST_FIELDS);
  if (shape) return shape;
  if (b.type !== 'pii-recovery-request') return 'type must be pii-recovery-request';
  if (typeof b.requestId !== 'string' || !UUID_V4.test(b.requestId)) return 'requestId must be a lower-case UUID v4';
  const problem = prefixed('operator ', nameProblem(b.operator)) ?? freeTextProblem(b.reason, 'reason', 10, 1000);
  if (problem) return problem;
  if (typeof b.ticket !== 'string' || !TICKET.test(b.ticket)) return `ticket must be 1..64 of A-Z a-z 0-9 . _ # / -`;
  const selector = selectorProblem(b.selector);
  if (selector) return selector;
  if (!Array.isArray(b.fields) || b.fields.length === 0) return `fields must be a non-empty array of ${FIELDS.join(', ')}`;
  for (const field of b.fields as unknown[]) {
    if (!(FIELDS as readonly unknown[]).includes(field)) return `unknown field name ${JSON.stringify(String(field).slice(0, 80))} in fields (known: ${FIELDS.join(', ')})`;
  }
  if (new Set(b.fields).size !== b.fields.length) return 'fields lists a field twice';
  try {
    parseRecipientPublicKey(b.recipientPublicKey, 'recipientPublicKey');
  } catch (err) {
    return (err as Error).message;
  }
  if (parseInstant(b.issuedAt) === null) return 'issuedAt must be an ISO 8601 date-time with a time zone';
  return null;
}

const APPROVAL_FIELDS = ['type', 'requestId', 'operator', 'decision', 'issuedAt'];

/** What is wrong with an approval body, or null when it is valid. Never throws for JSON input. */
export function validateApprovalBody(b: unknown): string | null {
  if (!isPlainObject(b)) return `approval body must be an object, got ${kindOf(b)}`;
  const shape = fieldsProblem(b, APPROVAL_FIELDS, ['comment', 'recordSetHash']);
  if (shape) return shape;
  if (b.type !== 'pii-recovery-approval') return 'type must be pii-recovery-approval';
  if (typeof b.requestId !== 'string' || !UUID_V4.test(b.requestId)) return 'requestId must be a lower-case UUID v4';
  const name = prefixed('operator ', nameProblem(b.operator));
  if (name) return name;
  if (b.decision !== 'approve' && b.decision !== 'deny') return 'decision must be approve or deny';
  if (Object.hasOwn(b, 'recordSetHash') && (typeof b.recordSetHash !== 'string' || !FINGERPRINT.test(b.recordSetHash))) return 'recordSetHash must be 64 lower-case hex digits';
  if (b.decision === 'approve' && !Object.hasOwn(b, 'recordSetHash')) return 'an approval must carry the recordSetHash of the records it approves';
  if (Object.hasOwn(b, 'comment')) {
    const comment = freeTextProblem(b.comment, 'comment', 1, 1000);
    if (comment) return comment;
  }
  if (parseInstant(b.issuedAt) === null) return 'issuedAt must be an ISO 8601 date-time with a time zone';
  return null;
}
