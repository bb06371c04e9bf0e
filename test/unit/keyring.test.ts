import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../../lib/config';
import { open, seal } from '../../lib/crypto';
import {
  devKeyringPath,
  KeyringError,
  keyringFromFile,
  loadKeyring,
  newKeyringFile,
  writeKeyringFile,
  type Keyring,
  type KeyringFile,
} from '../../lib/keyring';
import { makeTempDir, removeTempDirs, testKeyringFile } from './helpers';

afterAll(removeTempDirs);

type KeyringConfig = Pick<Config, 'keys' | 'dataDir' | 'production'>;
const quiet = () => undefined;
const b64 = (bytes: number) => crypto.randomBytes(bytes).toString('base64');

/** The error loadKeyring throws, checked to be a KeyringError. */
function keyringError(run: () => unknown): KeyringError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(KeyringError);
    return err as KeyringError;
  }
  throw new Error('expected a KeyringError, but nothing was thrown');
}

function expectKeyringMatches(keyring: Keyring, file: KeyringFile): void {
  expect(keyring.activeKeyId).toBe(file.activeKeyId);
  expect([...keyring.keys.keys()].sort()).toEqual(Object.keys(file.keys).sort());
  for (const [id, value] of Object.entries(file.keys)) expect(keyring.keys.get(id)!.equals(Buffer.from(value, 'base64'))).toBe(true);
  expect(keyring.fingerprintKey.equals(Buffer.from(file.fingerprintKey, 'base64'))).toBe(true);
}

function writeJson(dir: string, name: string, content: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('loadKeyring from PII_KEYRING_FILE', () => {
  it('loads every key and the fingerprint key, and works for seal/open', () => {
    const dir = makeTempDir();
    const content = testKeyringFile(['k-2024', 'k-2025'], 'k-2025');
    const file = writeJson(dir, 'keyring.json', content);
    const config: KeyringConfig = { keys: { keyringFile: file }, dataDir: dir, production: true };
    const keyring = loadKeyring(config, quiet);
    expectKeyringMatches(keyring, content);
    // A second load (another process) reads what the first one wrote.
    expect(open(loadKeyring(config, quiet), seal(keyring, 'x', 'ctx'), 'ctx').toString()).toBe('x');
  });

  it('takes precedence over the PII_* variables', () => {
    const dir = makeTempDir();
    const content = testKeyringFile(['k-file']);
    const file = writeJson(dir, 'keyring.json', content);
    const keyring = loadKeyring({ keys: { keyringFile: file, encryptionKeys: 'garbage', fingerprintKey: 'garbage' }, dataDir: dir, production: true }, quiet);
    expectKeyringMatches(keyring, content);
  });

  it('names PII_KEYRING_FILE when the file is missing or not JSON', () => {
    const dir = makeTempDir();
    const missing = path.join(dir, 'nope.json');
    expect(keyringError(() => loadKeyring({ keys: { keyringFile: missing }, dataDir: dir, production: true }, quiet)).message).toContain(
      `PII_KEYRING_FILE=${missing}`,
    );
    const broken = writeJson(dir, 'broken.json', '{"activeKeyId": ');
    expect(keyringError(() => loadKeyring({ keys: { keyringFile: broken }, dataDir: dir, production: true }, quiet)).message).toMatch(
      /PII_KEYRING_FILE=.*broken\.json cannot be read as JSON/,
    );
  });

  it('names the file when its content has the wrong shape', () => {
    const dir = makeTempDir();
    const file = writeJson(dir, 'shape.json', { activeKeyId: 'k' });
    const err = keyringError(() => loadKeyring({ keys: { keyringFile: file }, dataDir: dir, production: true }, quiet));
    expect(err.message).toContain(file);
    expect(err.message).toContain('expected {"activeKeyId", "keys"');
  });
});

describe('loadKeyring from the PII_* variables', () => {
  const dataDir = '/nonexistent-data-dir-never-written';

  it('reads PII_ENCRYPTION_KEYS, PII_ACTIVE_KEY_ID and PII_FINGERPRINT_KEY', () => {
    const k1 = b64(32);
    const k2 = b64(32);
    const fp = b64(32);
    const keyring = loadKeyring(
      { keys: { encryptionKeys: `k1:${k1}, k2:${k2}`, activeKeyId: 'k2', fingerprintKey: fp }, dataDir, production: true },
      quiet,
    );
    expectKeyringMatches(keyring, { activeKeyId: 'k2', keys: { k1, k2 }, fingerprintKey: fp });
  });

  it('makes a single key active without PII_ACTIVE_KEY_ID', () => {
    const key = b64(32);
    const keyring = loadKeyring({ keys: { encryptionKeys: `only:${key}`, fingerprintKey: b64(32) }, dataDir, production: true }, quiet);
    expect(keyring.activeKeyId).toBe('only');
  });

  it('requires PII_ACTIVE_KEY_ID with several keys', () => {
    const err = keyringError(() =>
      loadKeyring({ keys: { encryptionKeys: `a:${b64(32)},b:${b64(32)}`, fingerprintKey: b64(32) }, dataDir, production: true }, quiet),
    );
    expect(err.message).toContain('PII_ACTIVE_KEY_ID');
  });

  it('requires the encryption keys and the fingerprint key together', () => {
    expect(keyringError(() => loadKeyring({ keys: { fingerprintKey: b64(32) }, dataDir, production: true }, quiet)).message).toMatch(
      /PII_ENCRYPTION_KEYS and PII_FINGERPRINT_KEY must be set together/,
    );
    expect(keyringError(() => loadKeyring({ keys: { encryptionKeys: `a:${b64(32)}` }, dataDir, production: false }, quiet)).message).toMatch(
      /must be set together/,
    );
  });

  it('rejects a list that is not id:key pairs', () => {
    expect(keyringError(() => loadKeyring({ keys: { encryptionKeys: b64(32), fingerprintKey: b64(32) }, dataDir, production: true }, quiet)).message).toMatch(
      /comma-separated list of id:base64key/,
    );
  });

  it('names an active key ID that is not among the keys', () => {
    const err = keyringError(() =>
      loadKeyring({ keys: { encryptionKeys: `a:${b64(32)}`, activeKeyId: 'zzz', fingerprintKey: b64(32) }, dataDir, production: true }, quiet),
    );
    expect(err.message).toContain('"zzz" is not one of the keys (a)');
  });
});

describe('loadKeyring: development keys', () => {
  it('generates keys once into an empty DATA_DIR, readable by the owner only, and reuses them', () => {
    const dataDir = makeTempDir();
    const logs: string[] = [];
    const first = loadKeyring({ keys: {}, dataDir, production: false }, (m) => logs.push(m));
    const file = devKeyringPath(dataDir);
    expect(file).toBe(path.join(dataDir, 'keys', 'keyring.json'));
    expect(fs.existsSync(file)).toBe(true);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o077).toBe(0); // the keys folder is private too
    expect(logs).toHaveLength(1);
    expect(logs[0]).toContain(file);

    const second = loadKeyring({ keys: {}, dataDir, production: false }, (m) => logs.push(m));
    expect(logs).toHaveLength(1); // nothing new generated
    expect(second.activeKeyId).toBe(first.activeKeyId);
    expect(second.keys.get(second.activeKeyId)!.equals(first.keys.get(first.activeKeyId)!)).toBe(true);
    expect(second.fingerprintKey.equals(first.fingerprintKey)).toBe(true);
    expectKeyringMatches(second, JSON.parse(fs.readFileSync(file, 'utf8')));
  });

  it('gives different keys in different data folders', () => {
    const a = loadKeyring({ keys: {}, dataDir: makeTempDir(), production: false }, quiet);
    const b = loadKeyring({ keys: {}, dataDir: makeTempDir(), production: false }, quiet);
    expect(a.fingerprintKey.equals(b.fingerprintKey)).toBe(false);
  });

  it('refuses to run in production without keys, pointing at PII_KEYRING_FILE, and generates nothing', () => {
    const dataDir = makeTempDir();
    const err = keyringError(() => loadKeyring({ keys: {}, dataDir, production: true }, quiet));
    expect(err.message).toContain('PII_KEYRING_FILE');
    expect(err.message).toContain('production');
    expect(fs.existsSync(devKeyringPath(dataDir))).toBe(false);
  });
});

describe('keyringFromFile: malformed keys', () => {
  const valid = () => testKeyringFile(['k-1']);

  it.each<[string, (f: KeyringFile) => KeyringFile, RegExp]>([
    ['a 16-byte key', (f) => ({ ...f, keys: { 'k-1': b64(16) } }), /key k-1 must be 32 bytes/],
    ['a 33-byte key', (f) => ({ ...f, keys: { 'k-1': b64(33) } }), /key k-1 must be 32 bytes/],
    ['a key that is not base64', (f) => ({ ...f, keys: { 'k-1': '*'.repeat(44) } }), /key k-1 must be 32 bytes, base64-encoded/],
    ['an empty key', (f) => ({ ...f, keys: { 'k-1': '' } }), /key k-1 must be 32 bytes/],
    ['a base64url key', (f) => ({ ...f, keys: { 'k-1': Buffer.alloc(32, 0xfb).toString('base64url') } }), /key k-1 must be 32 bytes/],
    ['a short fingerprint key', (f) => ({ ...f, fingerprintKey: b64(31) }), /fingerprintKey must be 32 bytes/],
    ['a missing fingerprint key', (f) => ({ ...f, fingerprintKey: undefined as unknown as string }), /fingerprintKey must be 32 bytes/],
    ['an active key that is not in the keys', (f) => ({ ...f, activeKeyId: 'k-9' }), /activeKeyId "k-9" is not one of the keys \(k-1\)/],
    ['no keys at all', (f) => ({ ...f, keys: {} }), /is not one of the keys \(none\)/],
    ['a key ID with a space', (f) => ({ ...f, keys: { 'bad id': b64(32) } }), /key ID "bad id" must match/],
    ['a key ID of 65 characters', (f) => ({ ...f, keys: { ['k'.repeat(65)]: b64(32) } }), /must match/],
    ['no keys object', (f) => ({ ...f, keys: null as unknown as Record<string, string> }), /expected \{"activeKeyId"/],
  ])('rejects %s with a message naming the problem', (_name, change, message) => {
    const err = keyringError(() => keyringFromFile(change(valid()), 'test-source'));
    expect(err.message).toMatch(message);
    expect(err.message).toContain('test-source');
  });

  it('rejects a file that is not an object', () => {
    for (const content of [null, 'keys', 42, []]) {
      expect(keyringError(() => keyringFromFile(content as unknown as KeyringFile, 'src')).message).toContain('src: expected');
    }
  });

  it('does not echo key material in its errors', () => {
    const secret = b64(16);
    const err = keyringError(() => keyringFromFile({ ...valid(), keys: { 'k-1': secret } }, 'src'));
    expect(err.message).not.toContain(secret);
  });
});

describe('newKeyringFile / writeKeyringFile', () => {
  it('makes one dated active key of 32 random bytes and a separate fingerprint key', () => {
    const file = newKeyringFile(new Date('2025-03-04T00:00:00Z'));
    expect(file.activeKeyId).toMatch(/^k-20250304-[0-9a-f]{6}$/);
    expect(Object.keys(file.keys)).toEqual([file.activeKeyId]);
    const keyring = keyringFromFile(file, 'new');
    expect(keyring.keys.get(file.activeKeyId)).toHaveLength(32);
    expect(keyring.fingerprintKey).toHaveLength(32);
    expect(keyring.fingerprintKey.equals(keyring.keys.get(file.activeKeyId)!)).toBe(false);
  });

  it('never overwrites an existing key file', () => {
    const file = path.join(makeTempDir(), 'nested', 'keyring.json');
    const original = newKeyringFile();
    writeKeyringFile(file, original);
    expect(() => writeKeyringFile(file, newKeyringFile())).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(original);
  });
});
