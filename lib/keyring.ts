// The keys that protect PII: AES-256 data keys (versioned by ID; one active for new
// writes, the others kept to read older ciphertext) and a separate HMAC key for the
// fingerprints. Loaded once at start-up, from the environment or a key file.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from './config';

export interface Keyring {
  activeKeyId: string;
  keys: ReadonlyMap<string, Buffer>;
  fingerprintKey: Buffer;
}

/** The JSON form of a key file. Keys are base64 of 32 random bytes. */
export interface KeyringFile {
  activeKeyId: string;
  keys: Record<string, string>;
  fingerprintKey: string;
}

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

export class KeyringError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyringError';
  }
}

function decodeKey(value: string, where: string): Buffer {
  const key = Buffer.from(value, 'base64');
  if (key.length !== 32 || key.toString('base64') !== value.replace(/\s/g, '')) {
    throw new KeyringError(`${where} must be 32 bytes, base64-encoded (make one with: openssl rand -base64 32)`);
  }
  return key;
}

/** Validates a key file's content; `source` names it in errors. */
export function keyringFromFile(file: KeyringFile, source: string): Keyring {
  if (typeof file !== 'object' || file === null || typeof file.keys !== 'object' || file.keys === null) {
    throw new KeyringError(`${source}: expected {"activeKeyId", "keys": {id: base64}, "fingerprintKey"}`);
  }
  const keys = new Map<string, Buffer>();
  for (const [id, value] of Object.entries(file.keys)) {
    if (!KEY_ID.test(id)) throw new KeyringError(`${source}: key ID ${JSON.stringify(id)} must match ${KEY_ID}`);
    keys.set(id, decodeKey(String(value), `${source}: key ${id}`));
  }
  if (!keys.has(file.activeKeyId)) {
    throw new KeyringError(`${source}: activeKeyId ${JSON.stringify(file.activeKeyId)} is not one of the keys (${[...keys.keys()].join(', ') || 'none'})`);
  }
  return { activeKeyId: file.activeKeyId, keys, fingerprintKey: decodeKey(String(file.fingerprintKey), `${source}: fingerprintKey`) };
}

/** `PII_ENCRYPTION_KEYS=id1:base64,id2:base64` + `PII_ACTIVE_KEY_ID` + `PII_FINGERPRINT_KEY`. */
function keyringFromEnv(keys: Config['keys']): Keyring {
  if (!keys.encryptionKeys || !keys.fingerprintKey) {
    throw new KeyringError('PII_ENCRYPTION_KEYS and PII_FINGERPRINT_KEY must be set together (or use PII_KEYRING_FILE)');
  }
  const entries: Record<string, string> = {};
  for (const part of keys.encryptionKeys.split(',')) {
    const at = part.indexOf(':');
    if (at < 1) throw new KeyringError('PII_ENCRYPTION_KEYS must be a comma-separated list of id:base64key');
    entries[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  const ids = Object.keys(entries);
  const activeKeyId = keys.activeKeyId ?? (ids.length === 1 ? ids[0] : undefined);
  if (!activeKeyId) throw new KeyringError('PII_ACTIVE_KEY_ID must name one of the keys in PII_ENCRYPTION_KEYS when there are several');
  return keyringFromFile({ activeKeyId, keys: entries, fingerprintKey: keys.fingerprintKey }, 'PII_ENCRYPTION_KEYS');
}

export function newKeyringFile(now = new Date()): KeyringFile {
  const id = `k-${now.toISOString().slice(0, 10).replace(/-/g, '')}-${crypto.randomBytes(3).toString('hex')}`;
  return {
    activeKeyId: id,
    keys: { [id]: crypto.randomBytes(32).toString('base64') },
    fingerprintKey: crypto.randomBytes(32).toString('base64'),
  };
}

/** Writes a key file readable by its owner only; never overwrites one. */
export function writeKeyringFile(file: string, content: KeyringFile): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, JSON.stringify(content, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
}

export function devKeyringPath(dataDir: string): string {
  return path.join(dataDir, 'keys', 'keyring.json');
}

/**
 * The keyring for this process: PII_KEYRING_FILE, else the PII_* variables, else (outside
 * production only) development keys generated once into the data folder.
 */
export function loadKeyring(config: Pick<Config, 'keys' | 'dataDir' | 'production'>, log: (msg: string) => void = console.log): Keyring {
  const { keys } = config;
  if (keys.keyringFile) {
    let content: KeyringFile;
    try {
      content = JSON.parse(fs.readFileSync(keys.keyringFile, 'utf8'));
    } catch (err) {
      throw new KeyringError(`PII_KEYRING_FILE=${keys.keyringFile} cannot be read as JSON: ${(err as Error).message}`);
    }
    return keyringFromFile(content, `PII_KEYRING_FILE (${keys.keyringFile})`);
  }
  if (keys.encryptionKeys || keys.fingerprintKey) return keyringFromEnv(keys);
  if (config.production) {
    throw new KeyringError(
      'NODE_ENV=production and no PII keys are configured: set PII_KEYRING_FILE (or PII_ENCRYPTION_KEYS, PII_ACTIVE_KEY_ID and PII_FINGERPRINT_KEY). Development keys are never generated in production.',
    );
  }
  const file = devKeyringPath(config.dataDir);
  if (!fs.existsSync(file)) {
    try {
      writeKeyringFile(file, newKeyringFile());
      log(`Generated development PII keys in ${file} (local only, git-ignored; production refuses to start without real keys).`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err; // another process made them first
    }
  }
  return keyringFromFile(JSON.parse(fs.readFileSync(file, 'utf8')), file);
}
