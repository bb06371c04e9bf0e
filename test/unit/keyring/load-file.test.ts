// Loading a key file of either version (lib/pii/keyring/load.ts, envelope.ts)
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { open, seal } from '../../../lib/pii/crypto';
import { LocalKeyWrapper, type KeyWrapper } from '../../../lib/pii/kek';
import { devMasterKeyPath, keyringStatus, loadKeyring, type KeyringConfig, type KeyringFileV2 } from '../../../lib/pii/keyring';
import { makeTempDir, randomKey, removeTempDirs, testKeyringFile } from '../helpers';
import { quiet, readJson, keyringError, expectKeyringMatches, writeJson, masterKey, v2File } from './helpers';

afterAll(removeTempDirs);
afterEach(() => jest.restoreAllMocks());

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
    expect(keyringStatus(keyring)).toEqual({
      activeKeyId: 'k-2025',
      keyIds: ['k-2024', 'k-2025'],
      kek: null,
      source: `file:${file}`,
    });
  });

  it('takes precedence over the PII_* variables', async () => {
    const dir = makeTempDir();
    const content = testKeyringFile(['k-file']);
    const file = writeJson(dir, 'keyring.json', content);
    const keyring = await loadKeyring(
      { keys: { keyringFile: file, encryptionKeys: 'garbage', fingerprintKey: 'garbage' }, dataDir: dir, production: true },
      quiet,
    );
    expectKeyringMatches(keyring, content);
  });

  it('names PII_KEYRING_FILE when the file is missing or not JSON', async () => {
    const dir = makeTempDir();
    const missing = path.join(dir, 'nope.json');
    expect(
      (await keyringError(() => loadKeyring({ keys: { keyringFile: missing }, dataDir: dir, production: true }, quiet))).message,
    ).toContain(`PII_KEYRING_FILE=${missing}`);
    const broken = writeJson(dir, 'broken.json', '{"activeKeyId": ');
    expect(
      (await keyringError(() => loadKeyring({ keys: { keyringFile: broken }, dataDir: dir, production: true }, quiet))).message,
    ).toMatch(/PII_KEYRING_FILE=.*broken\.json cannot be read as JSON/);
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
    expect(
      (await keyringError(() => loadKeyring({ keys: { keyringFile: v3 }, dataDir: dir, production: true }, quiet))).message,
    ).toMatch(/unsupported key file version 3/);
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
    expectKeyringMatches(
      await loadKeyring({ keys: { keyringFile: file, masterKeyFile: keyFile }, dataDir: dir, production: true }, quiet),
      plain,
    );
    expectKeyringMatches(
      await loadKeyring({ keys: { keyringFile: file }, dataDir: dir, production: true }, quiet, master.wrapper),
      plain,
    );
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
    expect(
      (
        await keyringError(() =>
          loadKeyring({ keys: { keyringFile: config.keys.keyringFile }, dataDir, production: false }, quiet),
        )
      ).message,
    ).toContain('PII_MASTER_KEY');
    expect(fs.existsSync(devMasterKeyPath(dataDir))).toBe(false);
  });

  it('refuses a wrapper with the right ID that cannot unwrap (altered file or impostor KEK), naming the key and PII_MASTER_KEY', async () => {
    const { config, master } = await v2File(['k-1']);
    const impostor = new LocalKeyWrapper(randomKey());
    const sameId: KeyWrapper = {
      id: master.wrapper.id,
      wrap: (k, c) => impostor.wrap(k, c),
      unwrap: (w, c) => impostor.unwrap(w, c),
    };
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
    [
      'a key without createdAt',
      (f) => ({ ...f, keys: { [f.activeKeyId]: { wrapped: f.keys[f.activeKeyId].wrapped } } }),
      /createdAt/,
    ],
    [
      'a wrapped key that is not base64',
      (f) => ({ ...f, keys: { [f.activeKeyId]: { ...f.keys[f.activeKeyId], wrapped: '***' } } }),
      /wrapped must be non-empty base64/,
    ],
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

describe('key files written before the keyring was split into lib/pii/keyring/', () => {
  // Written by the code of lib/pii/keyring.ts as it was, with the master key 32×0x07, the
  // data key 32×0x01 and the fingerprint key 32×0x02. Deployed key files look like this.
  const OLD_V2_FILE = {
    version: 2,
    kek: 'local:4bb06f8e',
    activeKeyId: 'k-20260101-aaaaaa',
    keys: {
      'k-20260101-aaaaaa': {
        wrapped: 'AZhkDK0F0ptFIffzzY8YNZbxYgnY4ZHrFwwwBPwp1Xic33Bm0wJHtwiI2vD26pYNcd4tZst87AJRZNi3Kg==',
        createdAt: '2026-01-01T00:00:00.000Z',
      },
    },
    fingerprintKey: { wrapped: 'ASs3yM7CBQ0OnnT551e2gBtArsUmDWyIPTx8ncG5DGMAIXgvf3+cRyBKqM/OEol4VH+r7cZA6X+QDltT0g==' },
  };

  it('still loads: the same key-encryption key ID, data key and fingerprint key', async () => {
    const dir = makeTempDir();
    const file = writeJson(dir, 'keyring.json', OLD_V2_FILE);
    const config: KeyringConfig = {
      keys: { keyringFile: file, masterKey: Buffer.alloc(32, 7).toString('base64') },
      dataDir: dir,
      production: true,
    };
    const keyring = await loadKeyring(config, quiet);
    expect(keyringStatus(keyring)).toMatchObject({ activeKeyId: 'k-20260101-aaaaaa', kek: 'local:4bb06f8e' });
    expect(keyring.keys.get('k-20260101-aaaaaa')!.equals(Buffer.alloc(32, 1))).toBe(true);
    expect(keyring.fingerprintKey.equals(Buffer.alloc(32, 2))).toBe(true);
  });
});
