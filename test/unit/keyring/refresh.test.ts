// refreshKeyring: following a key file through a rotation (lib/pii/keyring/refresh.ts)
import fs from 'node:fs';
import { open, seal } from '../../../lib/pii/crypto';
import { keyringStatus, loadKeyring, refreshKeyring, rotateKeyring, wrapKeyringFile } from '../../../lib/pii/keyring';
import { makeTempDir, randomKey, removeTempDirs, testKeyring, testKeyringFile } from '../helpers';
import { quiet, b64, keyringError, expectKeyringMatches, writeJson, v2File, manualClock, rewriteInPlace } from './helpers';

afterAll(removeTempDirs);
afterEach(() => jest.restoreAllMocks());

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
    const keyring = await loadKeyring({ keys: { keyringFile: file }, dataDir: dir, production: true }, quiet, undefined, {
      now: clock.now,
    });
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
    rewriteInPlace(
      file,
      await wrapKeyringFile({ ...plain, keys: { ...rest, 'k-3': k3 }, activeKeyId: 'k-3' }, master.wrapper),
      20,
    );
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

    rewriteInPlace(
      file,
      await wrapKeyringFile({ ...plain, keys: { 'k-1': randomKey().toString('base64') } }, master.wrapper),
      20,
    );
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
    const env = await loadKeyring(
      { keys: { encryptionKeys: `k1:${b64(32)}`, fingerprintKey: b64(32) }, dataDir: '/nonexistent', production: true },
      quiet,
    );
    const stat = jest.spyOn(fs.promises, 'stat');
    expect(await refreshKeyring(env, { force: true })).toBe(false);
    expect(await refreshKeyring(testKeyring(), { force: true })).toBe(false);
    expect(stat).not.toHaveBeenCalled();
    expect(keyringStatus(env)).toEqual({ activeKeyId: 'k1', keyIds: ['k1'], kek: null, source: 'env:PII_ENCRYPTION_KEYS' });
    expect(keyringStatus(testKeyring({ ids: ['a', 'b'] })).source).toBe('memory');
  });
});
