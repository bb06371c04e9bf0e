// LocalKeyWrapper: the local key-encryption key (lib/pii/kek.ts)
import crypto from 'node:crypto';
import util from 'node:util';
import { LocalKeyWrapper } from '../../../lib/pii/kek';
import { FINGERPRINT_KEY_CONTEXT } from '../../../lib/pii/keyring';
import { randomKey, removeTempDirs } from '../helpers';

afterAll(removeTempDirs);
afterEach(() => jest.restoreAllMocks());

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
