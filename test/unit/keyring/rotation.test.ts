// rotateKeyring (lib/pii/keyring/rotation.ts)
import { defaultPayloadConverter } from '@temporalio/common';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { EncryptionCodec, METADATA_KEY_ID } from '../../../lib/pii/codec';
import { fingerprint, open, seal } from '../../../lib/pii/crypto';
import { type KeyWrapper } from '../../../lib/pii/kek';
import { attachCodecKeys, loadKeyring, refreshKeyring, rotateKeyring, type KeyringFileV2 } from '../../../lib/pii/keyring';
import { makeTempDir, removeTempDirs, testCodecKeys, testKeyring, testKeyringFile } from '../helpers';
import { quiet, b64, readJson, mode, keyringError, writeJson, masterKey, v2File, manualClock, payloadOf } from './helpers';

afterAll(removeTempDirs);
afterEach(() => jest.restoreAllMocks());

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
    const spy = jest
      .spyOn(crypto, 'randomBytes')
      .mockImplementation((n: number) =>
        n === 3 ? Buffer.from([0, 0, Math.floor(Math.random() * 16)]) : crypto.webcrypto.getRandomValues(Buffer.alloc(n)),
      );
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
    expect(defaultPayloadConverter.fromPayload((await new EncryptionCodec(fresh).decode(encodedBefore))[0])).toEqual({
      ip: '199.172.111.135',
    });
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
    const env = await loadKeyring(
      { keys: { encryptionKeys: `k1:${b64(32)}`, fingerprintKey: b64(32) }, dataDir: '/nonexistent', production: true },
      quiet,
    );
    const err = await keyringError(() => rotateKeyring(env, masterKey().wrapper));
    expect(err.message).toContain('env:PII_ENCRYPTION_KEYS');
    expect(err.message).toMatch(/add it as new-id:key to PII_ENCRYPTION_KEYS/);
    expect(err.message).toMatch(/PII_ACTIVE_KEY_ID=new-id/);
    expect(err.message).toMatch(/PII_FINGERPRINT_KEY as it is/);
    expect((await keyringError(() => rotateKeyring(testKeyring(), masterKey().wrapper))).message).toContain(
      'PII_ENCRYPTION_KEYS',
    );
  });

  it("refuses a wrapper other than the file's key-encryption key and writes nothing", async () => {
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
    expect((await keyringError(() => rotateKeyring(file, master.wrapper))).message).toMatch(
      /being rotated by another process.*\.lock exists/,
    );
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    fs.rmSync(`${file}.lock`);
    await rotateKeyring(file, master.wrapper);
    expect(fs.existsSync(`${file}.lock`)).toBe(false);
  });
});
