// Key file formats and writing key files (lib/pii/keyring/format.ts, store.ts)
import fs from 'node:fs';
import path from 'node:path';
import {
  dataKeyContext,
  FINGERPRINT_KEY_CONTEXT,
  initKeyringFile,
  keyringFromFile,
  loadKeyringFile,
  newKeyringFile,
  wrapKeyringFile,
  writeKeyringFile,
  type KeyringFile,
} from '../../../lib/pii/keyring';
import { makeTempDir, removeTempDirs, testKeyringFile } from '../helpers';
import { quiet, b64, readJson, mode, keyringError, masterKey } from './helpers';

afterAll(removeTempDirs);
afterEach(() => jest.restoreAllMocks());

describe('keyringFromFile: malformed keys', () => {
  const valid = () => testKeyringFile(['k-1']);

  it.each<[string, (f: KeyringFile) => KeyringFile, RegExp]>([
    ['a 16-byte key', (f) => ({ ...f, keys: { 'k-1': b64(16) } }), /key k-1 must be 32 bytes/],
    ['a 33-byte key', (f) => ({ ...f, keys: { 'k-1': b64(33) } }), /key k-1 must be 32 bytes/],
    ['a key that is not base64', (f) => ({ ...f, keys: { 'k-1': '*'.repeat(44) } }), /key k-1 must be 32 bytes, base64-encoded/],
    ['an empty key', (f) => ({ ...f, keys: { 'k-1': '' } }), /key k-1 must be 32 bytes/],
    [
      'a base64url key',
      (f) => ({ ...f, keys: { 'k-1': Buffer.alloc(32, 0xfb).toString('base64url') } }),
      /key k-1 must be 32 bytes/,
    ],
    ['a short fingerprint key', (f) => ({ ...f, fingerprintKey: b64(31) }), /fingerprintKey must be 32 bytes/],
    [
      'a missing fingerprint key',
      (f) => ({ ...f, fingerprintKey: undefined as unknown as string }),
      /fingerprintKey must be 32 bytes/,
    ],
    [
      'an active key that is not in the keys',
      (f) => ({ ...f, activeKeyId: 'k-9' }),
      /activeKeyId "k-9" is not one of the keys \(k-1\)/,
    ],
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
      expect((await keyringError(() => keyringFromFile(content as unknown as KeyringFile, 'src'))).message).toContain(
        'src: expected',
      );
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
    expect(
      (await wrapper.unwrap(Buffer.from(wrapped.keys['k-a'].wrapped, 'base64'), dataKeyContext('k-a'))).toString('base64'),
    ).toBe(plain.keys['k-a']);
    expect(
      (await wrapper.unwrap(Buffer.from(wrapped.fingerprintKey.wrapped, 'base64'), FINGERPRINT_KEY_CONTEXT)).toString('base64'),
    ).toBe(plain.fingerprintKey);
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
