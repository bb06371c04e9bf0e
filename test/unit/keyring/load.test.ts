// Loading a keyring from the configuration: PII_* variables, development keys, the master key (lib/pii/keyring/load.ts)
import fs from 'node:fs';
import path from 'node:path';
import { LocalKeyWrapper } from '../../../lib/pii/kek';
import {
  devKeyringPath,
  devMasterKeyPath,
  keyringStatus,
  loadKeyring,
  masterKeyWrapper,
  newKeyringFile,
  writeKeyringFile,
  type KeyringFileV2,
} from '../../../lib/pii/keyring';
import { makeTempDir, removeTempDirs } from '../helpers';
import { quiet, b64, readJson, mode, keyringError, expectKeyringMatches, masterKey } from './helpers';

afterAll(removeTempDirs);
afterEach(() => jest.restoreAllMocks());

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
    const keyring = await loadKeyring(
      { keys: { encryptionKeys: `only:${key}`, fingerprintKey: b64(32) }, dataDir, production: true },
      quiet,
    );
    expect(keyring.activeKeyId).toBe('only');
  });

  it('requires PII_ACTIVE_KEY_ID with several keys', async () => {
    const err = await keyringError(() =>
      loadKeyring(
        { keys: { encryptionKeys: `a:${b64(32)},b:${b64(32)}`, fingerprintKey: b64(32) }, dataDir, production: true },
        quiet,
      ),
    );
    expect(err.message).toContain('PII_ACTIVE_KEY_ID');
  });

  it('requires the encryption keys and the fingerprint key together', async () => {
    expect(
      (await keyringError(() => loadKeyring({ keys: { fingerprintKey: b64(32) }, dataDir, production: true }, quiet))).message,
    ).toMatch(/PII_ENCRYPTION_KEYS and PII_FINGERPRINT_KEY must be set together/);
    expect(
      (await keyringError(() => loadKeyring({ keys: { encryptionKeys: `a:${b64(32)}` }, dataDir, production: false }, quiet)))
        .message,
    ).toMatch(/must be set together/);
  });

  it('rejects a list that is not id:key pairs', async () => {
    expect(
      (
        await keyringError(() =>
          loadKeyring({ keys: { encryptionKeys: b64(32), fingerprintKey: b64(32) }, dataDir, production: true }, quiet),
        )
      ).message,
    ).toMatch(/comma-separated list of id:base64key/);
  });

  it('names an active key ID that is not among the keys', async () => {
    const err = await keyringError(() =>
      loadKeyring(
        { keys: { encryptionKeys: `a:${b64(32)}`, activeKeyId: 'zzz', fingerprintKey: b64(32) }, dataDir, production: true },
        quiet,
      ),
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
    expect((await keyringError(() => loadKeyring({ keys: {}, dataDir, production: false }, quiet))).message).toContain(
      'PII_MASTER_KEY',
    );
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
    expect(
      (await keyringError(() => masterKeyWrapper({ keys: { masterKeyFile: missing }, dataDir: dir, production: true }))).message,
    ).toContain(`PII_MASTER_KEY_FILE=${missing}`);
    expect(
      (
        await keyringError(() =>
          masterKeyWrapper({ keys: { masterKey: masterKey().base64, masterKeyFile: missing }, dataDir: dir, production: true }),
        )
      ).message,
    ).toMatch(/only one of PII_MASTER_KEY and PII_MASTER_KEY_FILE/);
  });

  it('uses the development master key only outside production, and generates it only when asked', async () => {
    const dataDir = makeTempDir();
    expect((await keyringError(() => masterKeyWrapper({ keys: {}, dataDir, production: false }))).message).toContain(
      'PII_MASTER_KEY',
    );
    expect(fs.existsSync(devMasterKeyPath(dataDir))).toBe(false);
    const made = masterKeyWrapper({ keys: {}, dataDir, production: false }, { create: true, log: quiet });
    expect(mode(devMasterKeyPath(dataDir))).toBe(0o600);
    expect(masterKeyWrapper({ keys: {}, dataDir, production: false }).id).toBe(made.id);
    expect(
      (await keyringError(() => masterKeyWrapper({ keys: {}, dataDir, production: true }, { create: true }))).message,
    ).toMatch(/production.*PII_MASTER_KEY/);
  });
});
