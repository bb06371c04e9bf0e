// The payload codec's own keys (lib/pii/keyring/codec-keys.ts)
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { codecKeysOf, devCodecKeysPath, loadCodecKeys, loadKeyring } from '../../../lib/pii/keyring';
import { makeTempDir, removeTempDirs } from '../helpers';
import { quiet } from './helpers';

afterAll(removeTempDirs);
afterEach(() => jest.restoreAllMocks());

describe("loadCodecKeys: the payload codec's own keys", () => {
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
    expect(loadCodecKeys({ codecKeys: { file }, dataDir: makeTempDir(), production: true }, quiet).keys.get('c-b')).toEqual(
      Buffer.from(key, 'base64'),
    );
    expect(() => loadCodecKeys({ codecKeys: {}, dataDir: makeTempDir(), production: true }, quiet)).toThrow(
      /no payload codec key is configured: set TEMPORAL_CODEC_KEY_FILE/,
    );
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
