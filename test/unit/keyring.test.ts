import { defaultPayloadConverter } from '@temporalio/common';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';
import { EncryptionCodec, METADATA_KEY_ID } from '../../lib/pii/codec';
import { fingerprint, open, seal } from '../../lib/pii/crypto';
import { LocalKeyWrapper, type KeyWrapper } from '../../lib/pii/kek';
import {
  attachCodecKeys,
  codecKeysOf,
  dataKeyContext,
  devCodecKeysPath,
  devKeyringPath,
  devMasterKeyPath,
  FINGERPRINT_KEY_CONTEXT,
  initKeyringFile,
  KeyringError,
  keyringFromFile,
  keyringStatus,
  loadCodecKeys,
  loadKeyring,
  loadKeyringFile,
  masterKeyWrapper,
  newKeyringFile,
  refreshKeyring,
  rotateKeyring,
  wrapKeyringFile,
  writeKeyringFile,
  type Keyring,
  type KeyringConfig,
  type KeyringFile,
  type KeyringFileV2,
} from '../../lib/pii/keyring';
import { makeTempDir, randomKey, removeTempDirs, testCodecKeys, testKeyring, testKeyringFile } from './helpers';

afterAll(removeTempDirs);
afterEach(() => jest.restoreAllMocks());

const quiet = () => undefined;
const b64 = (bytes: number) => crypto.randomBytes(bytes).toString('base64');
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));
const mode = (file: string) => fs.statSync(file).mode & 0o777;

/** The error `run` throws or rejects with, checked to be a KeyringError. */
async function keyringError(run: () => unknown): Promise<KeyringError> {
  try {
    await run();
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

/** A master key, its base64 form for PII_MASTER_KEY, and the wrapper it makes. */
function masterKey() {
  const key = randomKey();
  return { key, base64: key.toString('base64'), wrapper: new LocalKeyWrapper(key) };
}

/** A version 2 key file in a fresh folder, wrapping fresh random keys. */
async function v2File(ids = ['k-1', 'k-2'], active = ids[ids.length - 1]) {
  const dir = makeTempDir();
  const master = masterKey();
  const plain = testKeyringFile(ids, active);
  const file = path.join(dir, 'keyring.json');
  writeKeyringFile(file, await wrapKeyringFile(plain, master.wrapper));
  const config: KeyringConfig = { keys: { keyringFile: file, masterKey: master.base64 }, dataDir: dir, production: true };
  return { dir, file, plain, master, config };
}

/** A clock the test moves by hand, for refreshKeyring's throttle. */
function manualClock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

/** Another writer: replaces the file's content in place (same inode) and moves its mtime on. */
function rewriteInPlace(file: string, content: unknown, mtimeStep = 10): void {
  const before = fs.statSync(file);
  fs.writeFileSync(file, JSON.stringify(content, null, 2) + '\n'); // as writeKeyringFile formats it
  const when = new Date(before.mtimeMs + mtimeStep * 1000);
  fs.utimesSync(file, when, when);
}

const payloadOf = (value: unknown) => defaultPayloadConverter.toPayload(value);

describe('LocalKeyWrapper', () => {
  it('wraps and unwraps a key; its ID is local: and 8 hex digits of the SHA-256 of the master key', async () => {
    const master = randomKey();
    const wrapper = new LocalKeyWrapper(master);
    expect(wrapper.id).toBe(`local:${crypto.createHash('sha256').update(master).digest('hex').slice(0, 8)}`);
    expect(new LocalKeyWrapper(randomKey()).id).not.toBe(wrapper.id);
    const key = randomKey();
    const wrapped = await wrapper.wrap(key, 'data-key:k-1');
    expect(wrapped.includes(key)).toBe(false);
    expect((await wrapper.unwrap(wrapped, 'data-key:k-1')).equals(key)).toBe(true);
    expect((await wrapper.wrap(key, 'data-key:k-1')).equals(wrapped)).toBe(false); // a fresh nonce each time
  });

  it('refuses another context, another master key, altered bytes and a short value', async () => {
    const wrapper = new LocalKeyWrapper(randomKey());
    const wrapped = await wrapper.wrap(randomKey(), 'data-key:k-1');
    await expect(wrapper.unwrap(wrapped, 'data-key:k-2')).rejects.toThrow(/authentication failed/);
    await expect(wrapper.unwrap(wrapped, FINGERPRINT_KEY_CONTEXT)).rejects.toThrow(/authentication failed/);
    await expect(new LocalKeyWrapper(randomKey()).unwrap(wrapped, 'data-key:k-1')).rejects.toThrow(/authentication failed/);
    const altered = Buffer.from(wrapped);
    altered[altered.length - 1] ^= 1;
    await expect(wrapper.unwrap(altered, 'data-key:k-1')).rejects.toThrow(/authentication failed/);
    await expect(wrapper.unwrap(wrapped.subarray(0, 20), 'data-key:k-1')).rejects.toThrow(/not a value wrapped/);
  });

  it('accepts only a 32-byte master key and never shows it', () => {
    expect(() => new LocalKeyWrapper(randomKey().subarray(0, 16))).toThrow(/32 bytes/);
    const master = randomKey();
    const wrapper = new LocalKeyWrapper(master);
    const shown = `${util.inspect(wrapper, { showHidden: true, depth: 5 })} ${JSON.stringify(wrapper)}`;
    for (const form of [master.toString('base64'), master.toString('hex')]) expect(shown).not.toContain(form);
  });

  it('keeps working after the caller zeroes the master key buffer', async () => {
    const master = randomKey();
    const wrapper = new LocalKeyWrapper(master);
    const key = randomKey();
    const wrapped = await wrapper.wrap(key, 'c');
    master.fill(0);
    expect((await wrapper.unwrap(wrapped, 'c')).equals(key)).toBe(true);
  });
});

describe('loadKeyring from PII_KEYRING_FILE (version 1, plain)', () => {
  it('loads every key and the fingerprint key, and works for seal/open', async () => {
    const dir = makeTempDir();
    const content = testKeyringFile(['k-2024', 'k-2025'], 'k-2025');
    const file = writeJson(dir, 'keyring.json', content);
    const config: KeyringConfig = { keys: { keyringFile: file }, dataDir: dir, production: true };
    const keyring = await loadKeyring(config, quiet);
    expectKeyringMatches(keyring, content);
    // A second load (another process) reads what the first one wrote.
    expect(open(await loadKeyring(config, quiet), seal(keyring, 'x', 'ctx'), 'ctx').toString()).toBe('x');
    expect(keyringStatus(keyring)).toEqual({ activeKeyId: 'k-2025', keyIds: ['k-2024', 'k-2025'], kek: null, source: `file:${file}` });
  });

  it('takes precedence over the PII_* variables', async () => {
    const dir = makeTempDir();
    const content = testKeyringFile(['k-file']);
    const file = writeJson(dir, 'keyring.json', content);
    const keyring = await loadKeyring({ keys: { keyringFile: file, encryptionKeys: 'garbage', fingerprintKey: 'garbage' }, dataDir: dir, production: true }, quiet);
    expectKeyringMatches(keyring, content);
  });

  it('names PII_KEYRING_FILE when the file is missing or not JSON', async () => {
    const dir = makeTempDir();
    const missing = path.join(dir, 'nope.json');
    expect((await keyringError(() => loadKeyring({ keys: { keyringFile: missing }, dataDir: dir, production: true }, quiet))).message).toContain(
      `PII_KEYRING_FILE=${missing}`,
    );
    const broken = writeJson(dir, 'broken.json', '{"activeKeyId": ');
    expect((await keyringError(() => loadKeyring({ keys: { keyringFile: broken }, dataDir: dir, production: true }, quiet))).message).toMatch(
      /PII_KEYRING_FILE=.*broken\.json cannot be read as JSON/,
    );
  });

  it('does not quote the file in a JSON error (it may hold keys)', async () => {
    const dir = makeTempDir();
    const secret = `S${crypto.randomBytes(8).toString('hex')}`;
    const file = writeJson(dir, 'broken.json', secret);
    expect(() => JSON.parse(fs.readFileSync(file, 'utf8'))).toThrow(secret); // JSON.parse itself would quote it
    const err = await keyringError(() => loadKeyring({ keys: { keyringFile: file }, dataDir: dir, production: true }, quiet));
    expect(err.message).toMatch(/cannot be read as JSON/);
    expect(err.message).not.toContain(secret);
  });

  it('names the file when its content has the wrong shape', async () => {
    const dir = makeTempDir();
    const file = writeJson(dir, 'shape.json', { activeKeyId: 'k' });
    const err = await keyringError(() => loadKeyring({ keys: { keyringFile: file }, dataDir: dir, production: true }, quiet));
    expect(err.message).toContain(file);
    expect(err.message).toContain('expected {"activeKeyId", "keys"');
  });

  it('reads "version": 1 as the plain format and refuses an unknown version', async () => {
    const dir = makeTempDir();
    const content = testKeyringFile(['k-1']);
    const v1 = writeJson(dir, 'v1.json', { version: 1, ...content });
    expectKeyringMatches(await loadKeyring({ keys: { keyringFile: v1 }, dataDir: dir, production: true }, quiet), content);
    const v3 = writeJson(dir, 'v3.json', { version: 3, ...content });
    expect((await keyringError(() => loadKeyring({ keys: { keyringFile: v3 }, dataDir: dir, production: true }, quiet))).message).toMatch(
      /unsupported key file version 3/,
    );
  });
});

describe('version 2 (wrapped) key files', () => {
  it('round-trips through a file: the keys unwrapped with PII_MASTER_KEY are the keys that were wrapped', async () => {
    const { file, plain, master, config } = await v2File(['k-old', 'k-new'], 'k-new');
    const content = readJson(file) as KeyringFileV2;
    expect(content.version).toBe(2);
    expect(content.kek).toBe(master.wrapper.id);
    expect(content.activeKeyId).toBe('k-new');
    expect(Object.keys(content.keys)).toEqual(['k-old', 'k-new']);
    for (const entry of Object.values(content.keys)) expect(Number.isNaN(Date.parse(entry.createdAt))).toBe(false);

    const keyring = await loadKeyring(config, quiet);
    expectKeyringMatches(keyring, plain);
    const status = keyringStatus(keyring);
    expect(status).toEqual({ activeKeyId: 'k-new', keyIds: ['k-new', 'k-old'], kek: master.wrapper.id, source: `file:${file}` });
    const statusText = JSON.stringify(status);
    for (const key of [...Object.values(plain.keys), plain.fingerprintKey]) expect(statusText).not.toContain(key);
    // Another process with the same master key reads what this one sealed.
    expect(open(await loadKeyring(config, quiet), seal(keyring, 'x', 'ctx'), 'ctx').toString()).toBe('x');
  });

  it('takes the master key from PII_MASTER_KEY_FILE, or a wrapper given by the caller', async () => {
    const { dir, file, plain, master } = await v2File();
    const keyFile = path.join(dir, 'master.key');
    fs.writeFileSync(keyFile, `${master.base64}\n`, { mode: 0o600 });
    expectKeyringMatches(await loadKeyring({ keys: { keyringFile: file, masterKeyFile: keyFile }, dataDir: dir, production: true }, quiet), plain);
    expectKeyringMatches(await loadKeyring({ keys: { keyringFile: file }, dataDir: dir, production: true }, quiet, master.wrapper), plain);
  });

  it('holds no key in plain form: neither the base64 nor the hex text nor the raw bytes', async () => {
    const { file, plain } = await v2File(['k-1', 'k-2', 'k-3']);
    const text = fs.readFileSync(file, 'utf8');
    const content = JSON.parse(text) as KeyringFileV2;
    const wrappedBytes = Buffer.concat([
      ...Object.values(content.keys).map((e) => Buffer.from(e.wrapped, 'base64')),
      Buffer.from(content.fingerprintKey.wrapped, 'base64'),
    ]);
    const keys = [...Object.values(plain.keys), plain.fingerprintKey].map((k) => Buffer.from(k, 'base64'));
    // The control: the v1 form of the same keys does contain them.
    expect(JSON.stringify(plain)).toContain(plain.fingerprintKey);
    for (const key of keys) {
      expect(text).not.toContain(key.toString('base64'));
      expect(text).not.toContain(key.toString('hex'));
      expect(wrappedBytes.includes(key)).toBe(false);
      expect(Buffer.from(text).includes(key)).toBe(false);
    }
  });

  it('refuses another master key with an error naming PII_MASTER_KEY and both key-encryption keys', async () => {
    const { config, master } = await v2File();
    const other = masterKey();
    const err = await keyringError(() => loadKeyring({ ...config, keys: { ...config.keys, masterKey: other.base64 } }, quiet));
    expect(err.message).toContain('PII_MASTER_KEY');
    expect(err.message).toContain(master.wrapper.id);
    expect(err.message).toContain(other.wrapper.id);
    expect(err.message).not.toContain(other.base64);
    // The same through a wrapper given by the caller.
    expect((await keyringError(() => loadKeyring(config, quiet, other.wrapper))).message).toContain('PII_MASTER_KEY');
  });

  it('refuses a version 2 file when no master key is configured, naming PII_MASTER_KEY', async () => {
    const { config, master } = await v2File();
    const err = await keyringError(() => loadKeyring({ ...config, keys: { keyringFile: config.keys.keyringFile } }, quiet));
    expect(err.message).toContain('PII_MASTER_KEY');
    expect(err.message).toContain(master.wrapper.id);
    // Outside production, a development master key that does not exist is not invented either.
    const dataDir = makeTempDir();
    expect((await keyringError(() => loadKeyring({ keys: { keyringFile: config.keys.keyringFile }, dataDir, production: false }, quiet))).message).toContain(
      'PII_MASTER_KEY',
    );
    expect(fs.existsSync(devMasterKeyPath(dataDir))).toBe(false);
  });

  it('refuses a wrapper with the right ID that cannot unwrap (altered file or impostor KEK), naming the key and PII_MASTER_KEY', async () => {
    const { config, master } = await v2File(['k-1']);
    const impostor = new LocalKeyWrapper(randomKey());
    const sameId: KeyWrapper = { id: master.wrapper.id, wrap: (k, c) => impostor.wrap(k, c), unwrap: (w, c) => impostor.unwrap(w, c) };
    const err = await keyringError(() => loadKeyring(config, quiet, sameId));
    expect(err.message).toMatch(/key k-1 cannot be unwrapped/);
    expect(err.message).toContain('PII_MASTER_KEY');
  });

  it('binds each wrapped key to its ID: swapping two wrapped keys in the file makes it unreadable', async () => {
    const { file, config } = await v2File(['k-1', 'k-2']);
    const content = readJson(file) as KeyringFileV2;
    await loadKeyring(config, quiet); // the file as written loads
    [content.keys['k-1'].wrapped, content.keys['k-2'].wrapped] = [content.keys['k-2'].wrapped, content.keys['k-1'].wrapped];
    fs.writeFileSync(file, JSON.stringify(content));
    expect((await keyringError(() => loadKeyring(config, quiet))).message).toMatch(/key k-\d cannot be unwrapped/);
    // Nor can a data key stand in for the fingerprint key.
    [content.keys['k-1'].wrapped, content.keys['k-2'].wrapped] = [content.keys['k-2'].wrapped, content.keys['k-1'].wrapped];
    content.fingerprintKey.wrapped = content.keys['k-1'].wrapped;
    fs.writeFileSync(file, JSON.stringify(content));
    expect((await keyringError(() => loadKeyring(config, quiet))).message).toMatch(/fingerprintKey cannot be unwrapped/);
  });

  it.each<[string, (f: KeyringFileV2) => unknown, RegExp]>([
    ['no kek', (f) => ({ ...f, kek: undefined }), /expected \{"version": 2, "kek"/],
    ['no keys object', (f) => ({ ...f, keys: [] }), /expected \{"version": 2/],
    ['a key without createdAt', (f) => ({ ...f, keys: { [f.activeKeyId]: { wrapped: f.keys[f.activeKeyId].wrapped } } }), /createdAt/],
    ['a wrapped key that is not base64', (f) => ({ ...f, keys: { [f.activeKeyId]: { ...f.keys[f.activeKeyId], wrapped: '***' } } }), /wrapped must be non-empty base64/],
    ['an active key that is not in the keys', (f) => ({ ...f, activeKeyId: 'k-9' }), /activeKeyId "k-9" is not one of the keys/],
    ['a bad key ID', (f) => ({ ...f, keys: { 'bad id': f.keys[f.activeKeyId] } }), /key ID "bad id" must match/],
    ['no fingerprint key', (f) => ({ ...f, fingerprintKey: {} }), /fingerprintKey: expected/],
  ])('rejects %s, naming the file', async (_name, change, message) => {
    const { file, config } = await v2File(['k-1']);
    fs.writeFileSync(file, JSON.stringify(change(readJson(file))));
    const err = await keyringError(() => loadKeyring(config, quiet));
    expect(err.message).toMatch(message);
    expect(err.message).toContain(file);
  });
});

describe('rotateKeyring', () => {
  it('adds a new active key, keeps the old ones and the fingerprint key, and replaces the file atomically (mode 600, nothing left over)', async () => {
    const { dir, file, plain, master, config } = await v2File(['k-1']);
    const inodeBefore = fs.statSync(file).ino;
    const before = readJson(file) as KeyringFileV2;
    const now = new Date('2026-11-26T10:00:00Z');

    const { newKeyId, previousKeyId } = await rotateKeyring(file, master.wrapper, now);
    expect(previousKeyId).toBe('k-1');
    expect(newKeyId).toMatch(/^k-20261126-[0-9a-f]{6}$/);

    const after = readJson(file) as KeyringFileV2;
    expect(after.activeKeyId).toBe(newKeyId);
    expect(after.kek).toBe(master.wrapper.id);
    expect(Object.keys(after.keys)).toEqual(['k-1', newKeyId]);
    expect(after.keys['k-1']).toEqual(before.keys['k-1']);
    expect(after.fingerprintKey).toEqual(before.fingerprintKey);
    expect(after.keys[newKeyId].createdAt).toBe(now.toISOString());

    expect(mode(file)).toBe(0o600);
    expect(fs.statSync(file).ino).not.toBe(inodeBefore); // a new file renamed over the old one, not rewritten in place
    expect(fs.readdirSync(dir)).toEqual(['keyring.json']); // no temporary or lock file left

    const keyring = await loadKeyring(config, quiet);
    expect(keyring.activeKeyId).toBe(newKeyId);
    expect(keyring.keys.get('k-1')!.equals(Buffer.from(plain.keys['k-1'], 'base64'))).toBe(true);
    expect(keyring.keys.get(newKeyId)).toHaveLength(32);
    expect(keyring.keys.get(newKeyId)!.equals(keyring.keys.get('k-1')!)).toBe(false);
    expect(keyring.fingerprintKey.equals(Buffer.from(plain.fingerprintKey, 'base64'))).toBe(true);
  });

  it('never reuses a key ID over many rotations on the same day, and keeps every key', async () => {
    const { file, master, config } = await v2File(['k-1']);
    const now = new Date('2026-01-02T00:00:00Z');
    const ids = new Set<string>(['k-1']);
    let previous = 'k-1';
    // Only 16 possible suffixes: the generator must keep drawing until it finds an unused one.
    const spy = jest.spyOn(crypto, 'randomBytes').mockImplementation(((n: number) =>
      n === 3 ? Buffer.from([0, 0, Math.floor(Math.random() * 16)]) : crypto.webcrypto.getRandomValues(Buffer.alloc(n))));
    for (let i = 0; i < 12; i++) {
      const result = await rotateKeyring(file, master.wrapper, now);
      expect(result.previousKeyId).toBe(previous);
      expect(ids.has(result.newKeyId)).toBe(false);
      ids.add(result.newKeyId);
      previous = result.newKeyId;
    }
    spy.mockRestore();
    const keyring = await loadKeyring(config, quiet);
    expect(new Set(keyring.keys.keys())).toEqual(ids);
    expect(keyring.activeKeyId).toBe(previous);
    expect(new Set([...keyring.keys.values()].map((k) => k.toString('hex'))).size).toBe(ids.size); // all different keys
  });

  it('keeps data readable: sealed values, codec payloads and fingerprints from before a rotation still work after it', async () => {
    const { file, master, config } = await v2File(['k-1']);
    const clock = manualClock();
    const keyring = await loadKeyring(config, quiet, undefined, { now: clock.now });
    const codecKeys = testCodecKeys(['c-1']);
    attachCodecKeys(keyring, codecKeys);
    const codec = new EncryptionCodec(keyring);

    const sealedBefore = seal(keyring, '199.172.111.135', 'msg-1:ip');
    expect(sealedBefore.keyId).toBe('k-1');
    const encodedBefore = await codec.encode([payloadOf({ ip: '199.172.111.135' })]);
    const fingerprintBefore = fingerprint(keyring, 'ip', '199.172.111.135');

    const { newKeyId } = await rotateKeyring(file, master.wrapper); // another process rotates
    clock.advance(1000);
    expect(await refreshKeyring(keyring)).toBe(true);
    expect(keyring.activeKeyId).toBe(newKeyId);

    expect(open(keyring, sealedBefore, 'msg-1:ip').toString()).toBe('199.172.111.135');
    const [decoded] = await codec.decode(encodedBefore);
    expect(defaultPayloadConverter.fromPayload(decoded)).toEqual({ ip: '199.172.111.135' });
    expect(fingerprint(keyring, 'ip', '199.172.111.135')).toBe(fingerprintBefore);

    // New data uses the new key, and a process that loads the rotated file reads both.
    const sealedAfter = seal(keyring, 'x', 'c');
    expect(sealedAfter.keyId).toBe(newKeyId);
    const [encodedAfter] = await codec.encode([payloadOf('y')]);
    // The codec has keys of its own: a data key rotation does not touch it.
    expect(Buffer.from(encodedAfter.metadata![METADATA_KEY_ID]).toString()).toBe('c-1');
    const fresh = await loadKeyring(config, quiet);
    attachCodecKeys(fresh, codecKeys);
    expect(open(fresh, sealedAfter, 'c').toString()).toBe('x');
    expect(open(fresh, sealedBefore, 'msg-1:ip').toString()).toBe('199.172.111.135');
    expect(defaultPayloadConverter.fromPayload((await new EncryptionCodec(fresh).decode(encodedBefore))[0])).toEqual({ ip: '199.172.111.135' });
  });

  it('refreshes a keyring passed instead of the file at once', async () => {
    const { master, config } = await v2File(['k-1']);
    const keyring = await loadKeyring(config, quiet);
    const { newKeyId } = await rotateKeyring(keyring, master.wrapper);
    expect(keyring.activeKeyId).toBe(newKeyId);
    expect([...keyring.keys.keys()].sort()).toEqual(['k-1', newKeyId].sort());
  });

  it('refuses a plain (version 1) file with how to rotate by hand, and leaves it unchanged', async () => {
    const dir = makeTempDir();
    const file = writeJson(dir, 'keyring.json', testKeyringFile(['k-1']));
    const before = fs.readFileSync(file, 'utf8');
    const err = await keyringError(() => rotateKeyring(file, masterKey().wrapper));
    expect(err.message).toContain('version 2');
    expect(err.message).toContain('PII_ENCRYPTION_KEYS');
    expect(err.message).toContain('PII_ACTIVE_KEY_ID');
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    expect(fs.readdirSync(dir)).toEqual(['keyring.json']);
  });

  it('refuses a keyring from the environment (or made in memory) with how to rotate environment keys by hand', async () => {
    const env = await loadKeyring({ keys: { encryptionKeys: `k1:${b64(32)}`, fingerprintKey: b64(32) }, dataDir: '/nonexistent', production: true }, quiet);
    const err = await keyringError(() => rotateKeyring(env, masterKey().wrapper));
    expect(err.message).toContain('env:PII_ENCRYPTION_KEYS');
    expect(err.message).toMatch(/add it as new-id:key to PII_ENCRYPTION_KEYS/);
    expect(err.message).toMatch(/PII_ACTIVE_KEY_ID=new-id/);
    expect(err.message).toMatch(/PII_FINGERPRINT_KEY as it is/);
    expect((await keyringError(() => rotateKeyring(testKeyring(), masterKey().wrapper))).message).toContain('PII_ENCRYPTION_KEYS');
  });

  it('refuses a wrapper other than the file\'s key-encryption key and writes nothing', async () => {
    const { dir, file } = await v2File(['k-1']);
    const before = fs.readFileSync(file, 'utf8');
    const err = await keyringError(() => rotateKeyring(file, masterKey().wrapper));
    expect(err.message).toContain('PII_MASTER_KEY');
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    expect(fs.readdirSync(dir)).toEqual(['keyring.json']);
  });

  it('leaves the file as it was and no temporary file when wrapping the new key fails', async () => {
    const { dir, file, master } = await v2File(['k-1']);
    const before = fs.readFileSync(file, 'utf8');
    const failing: KeyWrapper = {
      id: master.wrapper.id,
      wrap: async () => {
        throw new Error('KMS unavailable');
      },
      unwrap: (w, c) => master.wrapper.unwrap(w, c),
    };
    await expect(rotateKeyring(file, failing)).rejects.toThrow('KMS unavailable');
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    expect(fs.readdirSync(dir)).toEqual(['keyring.json']);
  });

  it('refuses to run while another rotation holds the lock', async () => {
    const { file, master } = await v2File(['k-1']);
    const before = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(`${file}.lock`, '12345\n');
    expect((await keyringError(() => rotateKeyring(file, master.wrapper))).message).toMatch(/being rotated by another process.*\.lock exists/);
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    fs.rmSync(`${file}.lock`);
    await rotateKeyring(file, master.wrapper);
    expect(fs.existsSync(`${file}.lock`)).toBe(false);
  });
});

describe('refreshKeyring', () => {
  it('picks up a rotation written by another process, but looks at the file at most once per second', async () => {
    const { file, master, config } = await v2File(['k-1']);
    const clock = manualClock();
    const keyring = await loadKeyring(config, quiet, undefined, { now: clock.now });
    const keysBefore = keyring.keys;
    const stat = jest.spyOn(fs.promises, 'stat');

    const { newKeyId } = await rotateKeyring(file, master.wrapper); // another writer
    stat.mockClear();
    for (let i = 0; i < 5; i++) {
      clock.advance(100);
      expect(await refreshKeyring(keyring)).toBe(false); // inside the window: not even a stat
    }
    expect(stat).not.toHaveBeenCalled();
    expect(keyring.activeKeyId).toBe('k-1');

    clock.advance(500); // 1000 ms since the load
    expect(await refreshKeyring(keyring)).toBe(true);
    expect(keyring.activeKeyId).toBe(newKeyId);
    expect([...keyring.keys.keys()].sort()).toEqual(['k-1', newKeyId].sort());
    expect(keyring.keys.get('k-1')!.equals(keysBefore.get('k-1')!)).toBe(true);
    expect(keyring.keys).not.toBe(keysBefore); // a new map: readers holding the old one see a consistent set

    stat.mockClear();
    const read = jest.spyOn(fs.promises, 'readFile');
    clock.advance(1000);
    expect(await refreshKeyring(keyring)).toBe(false); // unchanged file: one stat, no read
    expect(stat).toHaveBeenCalledTimes(1);
    expect(read).not.toHaveBeenCalled();
  });

  it('notices a file rewritten in place when only its mtime moves (same inode, same size), and reads it then', async () => {
    const { file, plain, master, config } = await v2File(['k-1', 'k-2'], 'k-1');
    const clock = manualClock();
    const keyring = await loadKeyring(config, quiet, undefined, { now: clock.now });
    const before = fs.statSync(file);
    // Another writer switches the active key to k-2, over the same file.
    rewriteInPlace(file, await wrapKeyringFile({ ...plain, activeKeyId: 'k-2' }, master.wrapper));
    const after = fs.statSync(file);
    expect([after.ino, after.size]).toEqual([before.ino, before.size]);
    clock.advance(1000);
    expect(await refreshKeyring(keyring)).toBe(true);
    expect(keyring.activeKeyId).toBe('k-2');
    expectKeyringMatches(keyring, { ...plain, activeKeyId: 'k-2' });
  });

  it('skips the wait when forced', async () => {
    const { file, master, config } = await v2File(['k-1']);
    const keyring = await loadKeyring(config, quiet, undefined, { now: manualClock().now });
    const { newKeyId } = await rotateKeyring(file, master.wrapper);
    expect(await refreshKeyring(keyring)).toBe(false);
    expect(await refreshKeyring(keyring, { force: true })).toBe(true);
    expect(keyring.activeKeyId).toBe(newKeyId);
  });

  it('follows a plain (version 1) key file too', async () => {
    const dir = makeTempDir();
    const content = testKeyringFile(['k-1']);
    const file = writeJson(dir, 'keyring.json', content);
    const clock = manualClock();
    const keyring = await loadKeyring({ keys: { keyringFile: file }, dataDir: dir, production: true }, quiet, undefined, { now: clock.now });
    const next = { ...content, activeKeyId: 'k-2', keys: { ...content.keys, 'k-2': randomKey().toString('base64') } };
    rewriteInPlace(file, next);
    clock.advance(1000);
    expect(await refreshKeyring(keyring)).toBe(true);
    expectKeyringMatches(keyring, next);
  });

  it('keeps a key that disappeared from the file, with one warning, so older ciphertext stays readable', async () => {
    const { file, plain, master, config } = await v2File(['k-1', 'k-2'], 'k-2');
    const clock = manualClock();
    const logs: string[] = [];
    const keyring = await loadKeyring(config, (m) => logs.push(m), undefined, { now: clock.now });
    const sealed = seal({ ...keyring, activeKeyId: 'k-1' }, 'old', 'c');

    const rest = Object.fromEntries(Object.entries(plain.keys).filter(([id]) => id !== 'k-1'));
    rewriteInPlace(file, await wrapKeyringFile({ ...plain, keys: rest }, master.wrapper));
    clock.advance(1000);
    expect(await refreshKeyring(keyring)).toBe(true);
    expect([...keyring.keys.keys()].sort()).toEqual(['k-1', 'k-2']);
    expect(open(keyring, sealed, 'c').toString()).toBe('old');
    const warnings = () => logs.filter((m) => m.includes('k-1') && /no longer in/.test(m));
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatch(/^Warning/);

    // Another change to the file: the key is still kept, and not reported again.
    const k3 = randomKey().toString('base64');
    rewriteInPlace(file, await wrapKeyringFile({ ...plain, keys: { ...rest, 'k-3': k3 }, activeKeyId: 'k-3' }, master.wrapper), 20);
    clock.advance(1000);
    expect(await refreshKeyring(keyring)).toBe(true);
    expect([...keyring.keys.keys()].sort()).toEqual(['k-1', 'k-2', 'k-3']);
    expect(warnings()).toHaveLength(1);
  });

  it('refuses a new fingerprint key or new material under a known key ID, keeps the keyring, and tries again later', async () => {
    const { file, plain, master, config } = await v2File(['k-1']);
    const clock = manualClock();
    const keyring = await loadKeyring(config, quiet, undefined, { now: clock.now });
    const original = { active: keyring.activeKeyId, keys: keyring.keys };

    rewriteInPlace(file, await wrapKeyringFile({ ...plain, fingerprintKey: randomKey().toString('base64') }, master.wrapper));
    clock.advance(1000);
    expect((await keyringError(() => refreshKeyring(keyring))).message).toMatch(/fingerprint key changed/);
    expect(keyring.keys).toBe(original.keys);

    rewriteInPlace(file, await wrapKeyringFile({ ...plain, keys: { 'k-1': randomKey().toString('base64') } }, master.wrapper), 20);
    clock.advance(1000);
    expect((await keyringError(() => refreshKeyring(keyring))).message).toMatch(/key k-1 now holds other key material/);
    expect(keyring.keys).toBe(original.keys);
    expect(keyring.activeKeyId).toBe(original.active);

    // Broken JSON: an error, then the repaired file is picked up.
    fs.writeFileSync(file, '{');
    clock.advance(1000);
    expect((await keyringError(() => refreshKeyring(keyring))).message).toMatch(/cannot be read as JSON/);
    const repaired = { ...plain, activeKeyId: 'k-2', keys: { ...plain.keys, 'k-2': randomKey().toString('base64') } };
    rewriteInPlace(file, await wrapKeyringFile(repaired, master.wrapper), 30);
    clock.advance(1000);
    expect(await refreshKeyring(keyring)).toBe(true);
    expect(keyring.activeKeyId).toBe('k-2');
  });

  it('does nothing for keys from the environment or made in memory', async () => {
    const env = await loadKeyring({ keys: { encryptionKeys: `k1:${b64(32)}`, fingerprintKey: b64(32) }, dataDir: '/nonexistent', production: true }, quiet);
    const stat = jest.spyOn(fs.promises, 'stat');
    expect(await refreshKeyring(env, { force: true })).toBe(false);
    expect(await refreshKeyring(testKeyring(), { force: true })).toBe(false);
    expect(stat).not.toHaveBeenCalled();
    expect(keyringStatus(env)).toEqual({ activeKeyId: 'k1', keyIds: ['k1'], kek: null, source: 'env:PII_ENCRYPTION_KEYS' });
    expect(keyringStatus(testKeyring({ ids: ['a', 'b'] })).source).toBe('memory');
  });
});

describe('loadKeyring from the PII_* variables', () => {
  const dataDir = '/nonexistent-data-dir-never-written';

  it('reads PII_ENCRYPTION_KEYS, PII_ACTIVE_KEY_ID and PII_FINGERPRINT_KEY', async () => {
    const k1 = b64(32);
    const k2 = b64(32);
    const fp = b64(32);
    const keyring = await loadKeyring(
      { keys: { encryptionKeys: `k1:${k1}, k2:${k2}`, activeKeyId: 'k2', fingerprintKey: fp }, dataDir, production: true },
      quiet,
    );
    expectKeyringMatches(keyring, { activeKeyId: 'k2', keys: { k1, k2 }, fingerprintKey: fp });
  });

  it('makes a single key active without PII_ACTIVE_KEY_ID', async () => {
    const key = b64(32);
    const keyring = await loadKeyring({ keys: { encryptionKeys: `only:${key}`, fingerprintKey: b64(32) }, dataDir, production: true }, quiet);
    expect(keyring.activeKeyId).toBe('only');
  });

  it('requires PII_ACTIVE_KEY_ID with several keys', async () => {
    const err = await keyringError(() =>
      loadKeyring({ keys: { encryptionKeys: `a:${b64(32)},b:${b64(32)}`, fingerprintKey: b64(32) }, dataDir, production: true }, quiet),
    );
    expect(err.message).toContain('PII_ACTIVE_KEY_ID');
  });

  it('requires the encryption keys and the fingerprint key together', async () => {
    expect((await keyringError(() => loadKeyring({ keys: { fingerprintKey: b64(32) }, dataDir, production: true }, quiet))).message).toMatch(
      /PII_ENCRYPTION_KEYS and PII_FINGERPRINT_KEY must be set together/,
    );
    expect((await keyringError(() => loadKeyring({ keys: { encryptionKeys: `a:${b64(32)}` }, dataDir, production: false }, quiet))).message).toMatch(
      /must be set together/,
    );
  });

  it('rejects a list that is not id:key pairs', async () => {
    expect(
      (await keyringError(() => loadKeyring({ keys: { encryptionKeys: b64(32), fingerprintKey: b64(32) }, dataDir, production: true }, quiet))).message,
    ).toMatch(/comma-separated list of id:base64key/);
  });

  it('names an active key ID that is not among the keys', async () => {
    const err = await keyringError(() =>
      loadKeyring({ keys: { encryptionKeys: `a:${b64(32)}`, activeKeyId: 'zzz', fingerprintKey: b64(32) }, dataDir, production: true }, quiet),
    );
    expect(err.message).toContain('"zzz" is not one of the keys (a)');
  });
});

describe('loadKeyring: development keys', () => {
  it('generates a master key and a wrapped key file once into an empty DATA_DIR, owner-only, and reuses them', async () => {
    const dataDir = makeTempDir();
    const logs: string[] = [];
    const first = await loadKeyring({ keys: {}, dataDir, production: false }, (m) => logs.push(m));
    const file = devKeyringPath(dataDir);
    const masterFile = devMasterKeyPath(dataDir);
    expect(file).toBe(path.join(dataDir, 'keys', 'keyring.json'));
    expect(masterFile).toBe(path.join(dataDir, 'keys', 'master.key'));
    for (const f of [file, masterFile]) expect(mode(f)).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o077).toBe(0); // the keys folder is private too
    expect(fs.readdirSync(path.dirname(file)).sort()).toEqual(['keyring.json', 'master.key']);

    const master = Buffer.from(fs.readFileSync(masterFile, 'utf8').trim(), 'base64');
    expect(master).toHaveLength(32);
    const content = readJson(file) as KeyringFileV2;
    expect(content.version).toBe(2);
    expect(content.kek).toBe(new LocalKeyWrapper(master).id);
    expect(keyringStatus(first)).toMatchObject({ kek: content.kek, source: `file:${file}`, activeKeyId: content.activeKeyId });
    expect(logs.some((m) => m.includes(file))).toBe(true);
    expect(logs.some((m) => m.includes(masterFile))).toBe(true);
    const logged = logs.length;

    const written = [fs.readFileSync(file), fs.readFileSync(masterFile)];
    const second = await loadKeyring({ keys: {}, dataDir, production: false }, (m) => logs.push(m));
    expect(logs).toHaveLength(logged); // nothing new generated
    expect([fs.readFileSync(file), fs.readFileSync(masterFile)]).toEqual(written);
    expect(second.activeKeyId).toBe(first.activeKeyId);
    expect(second.keys.get(second.activeKeyId)!.equals(first.keys.get(first.activeKeyId)!)).toBe(true);
    expect(second.fingerprintKey.equals(first.fingerprintKey)).toBe(true);
  });

  it('gives different keys in different data folders', async () => {
    const a = await loadKeyring({ keys: {}, dataDir: makeTempDir(), production: false }, quiet);
    const b = await loadKeyring({ keys: {}, dataDir: makeTempDir(), production: false }, quiet);
    expect(a.fingerprintKey.equals(b.fingerprintKey)).toBe(false);
  });

  it('refuses to run in production without keys, pointing at PII_KEYRING_FILE, and generates nothing', async () => {
    const dataDir = makeTempDir();
    const err = await keyringError(() => loadKeyring({ keys: {}, dataDir, production: true }, quiet));
    expect(err.message).toContain('PII_KEYRING_FILE');
    expect(err.message).toContain('production');
    expect(fs.readdirSync(dataDir)).toEqual([]);
    // A master key alone is not keys either.
    await keyringError(() => loadKeyring({ keys: { masterKey: masterKey().base64 }, dataDir, production: true }, quiet));
    expect(fs.readdirSync(dataDir)).toEqual([]);
  });

  it('still reads a plain development key file made before version 2, without making a master key', async () => {
    const dataDir = makeTempDir();
    const content = newKeyringFile();
    writeKeyringFile(devKeyringPath(dataDir), content);
    const logs: string[] = [];
    expectKeyringMatches(await loadKeyring({ keys: {}, dataDir, production: false }, (m) => logs.push(m)), content);
    expect(fs.existsSync(devMasterKeyPath(dataDir))).toBe(false);
    expect(logs).toEqual([]);
  });

  it('does not replace a lost development master key (the file could never be read with a new one)', async () => {
    const dataDir = makeTempDir();
    await loadKeyring({ keys: {}, dataDir, production: false }, quiet);
    fs.rmSync(devMasterKeyPath(dataDir));
    expect((await keyringError(() => loadKeyring({ keys: {}, dataDir, production: false }, quiet))).message).toContain('PII_MASTER_KEY');
    expect(fs.existsSync(devMasterKeyPath(dataDir))).toBe(false);
  });

  it('wraps the development key file with PII_MASTER_KEY when it is set, and writes no master key file', async () => {
    const dataDir = makeTempDir();
    const master = masterKey();
    await loadKeyring({ keys: { masterKey: master.base64 }, dataDir, production: false }, quiet);
    expect((readJson(devKeyringPath(dataDir)) as KeyringFileV2).kek).toBe(master.wrapper.id);
    expect(fs.existsSync(devMasterKeyPath(dataDir))).toBe(false);
  });
});

describe('masterKeyWrapper', () => {
  it('builds the wrapper from PII_MASTER_KEY or PII_MASTER_KEY_FILE', () => {
    const dir = makeTempDir();
    const master = masterKey();
    expect(masterKeyWrapper({ keys: { masterKey: master.base64 }, dataDir: dir, production: true }).id).toBe(master.wrapper.id);
    const keyFile = path.join(dir, 'mk');
    fs.writeFileSync(keyFile, ` ${master.base64}\n`);
    expect(masterKeyWrapper({ keys: { masterKeyFile: keyFile }, dataDir: dir, production: true }).id).toBe(master.wrapper.id);
  });

  it('names the variable that is wrong, without echoing its value', async () => {
    const dir = makeTempDir();
    const short = b64(16);
    const err = await keyringError(() => masterKeyWrapper({ keys: { masterKey: short }, dataDir: dir, production: true }));
    expect(err.message).toMatch(/PII_MASTER_KEY must be 32 bytes/);
    expect(err.message).not.toContain(short);
    const missing = path.join(dir, 'none');
    expect((await keyringError(() => masterKeyWrapper({ keys: { masterKeyFile: missing }, dataDir: dir, production: true }))).message).toContain(
      `PII_MASTER_KEY_FILE=${missing}`,
    );
    expect(
      (await keyringError(() => masterKeyWrapper({ keys: { masterKey: masterKey().base64, masterKeyFile: missing }, dataDir: dir, production: true }))).message,
    ).toMatch(/only one of PII_MASTER_KEY and PII_MASTER_KEY_FILE/);
  });

  it('uses the development master key only outside production, and generates it only when asked', async () => {
    const dataDir = makeTempDir();
    expect((await keyringError(() => masterKeyWrapper({ keys: {}, dataDir, production: false }))).message).toContain('PII_MASTER_KEY');
    expect(fs.existsSync(devMasterKeyPath(dataDir))).toBe(false);
    const made = masterKeyWrapper({ keys: {}, dataDir, production: false }, { create: true, log: quiet });
    expect(mode(devMasterKeyPath(dataDir))).toBe(0o600);
    expect(masterKeyWrapper({ keys: {}, dataDir, production: false }).id).toBe(made.id);
    expect((await keyringError(() => masterKeyWrapper({ keys: {}, dataDir, production: true }, { create: true }))).message).toMatch(
      /production.*PII_MASTER_KEY/,
    );
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
  ])('rejects %s with a message naming the problem', async (_name, change, message) => {
    const err = await keyringError(() => keyringFromFile(change(valid()), 'test-source'));
    expect(err.message).toMatch(message);
    expect(err.message).toContain('test-source');
  });

  it('rejects a file that is not an object', async () => {
    for (const content of [null, 'keys', 42, []]) {
      expect((await keyringError(() => keyringFromFile(content as unknown as KeyringFile, 'src'))).message).toContain('src: expected');
    }
  });

  it('does not echo key material in its errors', async () => {
    const secret = b64(16);
    const err = await keyringError(() => keyringFromFile({ ...valid(), keys: { 'k-1': secret } }, 'src'));
    expect(err.message).not.toContain(secret);
  });
});

describe('newKeyringFile / writeKeyringFile / wrapKeyringFile / initKeyringFile', () => {
  it('makes one dated active key of 32 random bytes and a separate fingerprint key', () => {
    const file = newKeyringFile(new Date('2025-03-04T00:00:00Z'));
    expect(file.activeKeyId).toMatch(/^k-20250304-[0-9a-f]{6}$/);
    expect(Object.keys(file.keys)).toEqual([file.activeKeyId]);
    const keyring = keyringFromFile(file, 'new');
    expect(keyring.keys.get(file.activeKeyId)).toHaveLength(32);
    expect(keyring.fingerprintKey).toHaveLength(32);
    expect(keyring.fingerprintKey.equals(keyring.keys.get(file.activeKeyId)!)).toBe(false);
  });

  it('never overwrites an existing key file, and leaves no temporary file', () => {
    const file = path.join(makeTempDir(), 'nested', 'keyring.json');
    const original = newKeyringFile();
    writeKeyringFile(file, original);
    expect(mode(file)).toBe(0o600);
    expect(() => writeKeyringFile(file, newKeyringFile())).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(readJson(file)).toEqual(original);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['keyring.json']);
  });

  it('wraps a plain file into version 2 with the same keys (converting an existing file)', async () => {
    const plain = testKeyringFile(['k-a', 'k-b'], 'k-b');
    const { wrapper } = masterKey();
    const wrapped = await wrapKeyringFile(plain, wrapper, new Date('2026-01-01T00:00:00Z'));
    expect(wrapped).toMatchObject({ version: 2, kek: wrapper.id, activeKeyId: 'k-b' });
    expect(wrapped.keys['k-a'].createdAt).toBe('2026-01-01T00:00:00.000Z');
    expect((await wrapper.unwrap(Buffer.from(wrapped.keys['k-a'].wrapped, 'base64'), dataKeyContext('k-a'))).toString('base64')).toBe(plain.keys['k-a']);
    expect((await wrapper.unwrap(Buffer.from(wrapped.fingerprintKey.wrapped, 'base64'), FINGERPRINT_KEY_CONTEXT)).toString('base64')).toBe(plain.fingerprintKey);
    await expect(wrapKeyringFile({ ...plain, keys: { 'k-b': b64(16) } }, wrapper)).rejects.toThrow(/must be 32 bytes/);
  });

  it('initKeyringFile writes a new wrapped key file, mode 600, that loads with the same wrapper; never overwrites one', async () => {
    const dir = makeTempDir();
    const file = path.join(dir, 'keys', 'keyring.json');
    const { wrapper } = masterKey();
    const made = await initKeyringFile(file, wrapper, new Date('2026-11-26T00:00:00Z'));
    expect(made.activeKeyId).toMatch(/^k-20261126-[0-9a-f]{6}$/);
    expect(made.kek).toBe(wrapper.id);
    expect(mode(file)).toBe(0o600);
    expect(readJson(file)).toMatchObject({ version: 2, kek: wrapper.id, activeKeyId: made.activeKeyId });
    const keyring = await loadKeyringFile(file, { wrapper, log: quiet });
    expect(keyring.activeKeyId).toBe(made.activeKeyId);

    const before = fs.readFileSync(file, 'utf8');
    expect((await keyringError(() => initKeyringFile(file, wrapper))).message).toMatch(/already exists.*never overwritten/);
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['keyring.json']);
  });
});

describe('loadCodecKeys: the payload codec\'s own keys', () => {
  it('outside production generates one development key file into DATA_DIR, apart from the PII keys, and reads it again', async () => {
    const dataDir = makeTempDir();
    const config = { codecKeys: {}, dataDir, production: false };
    const first = loadCodecKeys(config, quiet);
    expect(fs.statSync(devCodecKeysPath(dataDir)).mode & 0o777).toBe(0o600);
    expect(loadCodecKeys(config, quiet).keys.get(first.activeKeyId)).toEqual(first.keys.get(first.activeKeyId));
    const keyring = await loadKeyring({ keys: {}, dataDir, production: false, codecKeys: {} }, quiet);
    const viaKeyring = codecKeysOf(keyring);
    expect(viaKeyring.activeKeyId).toBe(first.activeKeyId);
    for (const k of viaKeyring.keys.values()) {
      expect([...keyring.keys.values(), keyring.fingerprintKey].some((d) => d.equals(k))).toBe(false);
    }
  });

  it('reads TEMPORAL_CODEC_KEYS and TEMPORAL_CODEC_KEY_FILE, and refuses production without either', () => {
    const key = crypto.randomBytes(32).toString('base64');
    const fromEnv = loadCodecKeys({ codecKeys: { keys: `c-a:${key}` }, dataDir: makeTempDir(), production: true }, quiet);
    expect(fromEnv.activeKeyId).toBe('c-a');
    const file = path.join(makeTempDir(), 'codec.json');
    fs.writeFileSync(file, JSON.stringify({ activeKeyId: 'c-b', keys: { 'c-b': key } }));
    expect(loadCodecKeys({ codecKeys: { file }, dataDir: makeTempDir(), production: true }, quiet).keys.get('c-b')).toEqual(Buffer.from(key, 'base64'));
    expect(() => loadCodecKeys({ codecKeys: {}, dataDir: makeTempDir(), production: true }, quiet)).toThrow(/no payload codec key is configured: set TEMPORAL_CODEC_KEY_FILE/);
    fs.writeFileSync(file, `{"activeKeyId": "c-b", "keys": {"c-b": "${key}"`);
    const err = (() => {
      try {
        loadCodecKeys({ codecKeys: { file }, dataDir: makeTempDir(), production: true }, quiet);
      } catch (e) {
        return e as Error;
      }
      throw new Error('no error');
    })();
    expect(err.message).toMatch(/not valid JSON/);
    expect(err.message).not.toContain(key);
  });
});
