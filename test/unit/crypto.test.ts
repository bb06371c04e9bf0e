import { fingerprint, open, seal, type Sealed } from '../../lib/pii/crypto';
import { rotatedKeyring, testKeyring } from './helpers';

const flipByte = (blob: Buffer, index: number): Buffer => {
  const copy = Buffer.from(blob);
  copy[index] ^= 0x01;
  return copy;
};

describe('seal / open', () => {
  const keyring = testKeyring({ ids: ['k-a'] });

  it('round-trips a string under the same context', () => {
    const sealed = seal(keyring, '199.172.111.135', 'msg-1:ip');
    expect(sealed.keyId).toBe('k-a');
    expect(open(keyring, sealed, 'msg-1:ip').toString('utf8')).toBe('199.172.111.135');
  });

  it('round-trips bytes, including the empty value', () => {
    const bytes = Uint8Array.from([0, 1, 2, 250, 255]);
    expect(open(keyring, seal(keyring, bytes, 'ctx'), 'ctx')).toEqual(Buffer.from(bytes));
    expect(open(keyring, seal(keyring, '', 'ctx'), 'ctx')).toEqual(Buffer.alloc(0));
  });

  it('writes version 1 ‖ 12-byte nonce ‖ 16-byte tag ‖ ciphertext of the plaintext’s length', () => {
    const sealed = seal(keyring, 'abcdef', 'ctx');
    expect(sealed.blob[0]).toBe(1);
    expect(sealed.blob).toHaveLength(1 + 12 + 16 + 6);
    expect(sealed.blob.includes(Buffer.from('abcdef'))).toBe(false);
  });

  it('fails under another message’s context (the AAD binds the ciphertext to its place)', () => {
    const sealed = seal(keyring, '593-47-5928', 'msg-1:device_id');
    expect(() => open(keyring, sealed, 'msg-2:device_id')).toThrow();
    expect(() => open(keyring, sealed, 'msg-1:ip')).toThrow();
    expect(() => open(keyring, sealed, '')).toThrow();
  });

  it('fails after any single byte of nonce, tag or ciphertext is flipped', () => {
    const sealed = seal(keyring, 'sensitive value', 'ctx');
    for (let i = 1; i < sealed.blob.length; i++) {
      expect(() => open(keyring, { ...sealed, blob: flipByte(sealed.blob, i) }, 'ctx')).toThrow();
    }
  });

  it('rejects an unknown format version and a blob too short to hold nonce and tag', () => {
    const sealed = seal(keyring, 'x', 'ctx');
    expect(() => open(keyring, { ...sealed, blob: flipByte(sealed.blob, 0) }, 'ctx')).toThrow(/unknown format/);
    expect(() => open(keyring, { ...sealed, blob: sealed.blob.subarray(0, 28) }, 'ctx')).toThrow(/unknown format/);
  });

  it('fails with an error naming the key ID when the keyring lacks that key', () => {
    const sealed: Sealed = { ...seal(keyring, 'x', 'ctx'), keyId: 'k-retired-2023' };
    expect(() => open(keyring, sealed, 'ctx')).toThrow(/k-retired-2023/);
  });

  it('fails with a different key under the same key ID', () => {
    const impostor = testKeyring({ ids: ['k-a'] });
    expect(() => open(impostor, seal(keyring, 'x', 'ctx'), 'ctx')).toThrow();
  });

  it('uses a fresh random nonce: two seals of the same value differ', () => {
    const a = seal(keyring, 'same', 'ctx');
    const b = seal(keyring, 'same', 'ctx');
    expect(a.blob.equals(b.blob)).toBe(false);
    expect(a.blob.subarray(1, 13).equals(b.blob.subarray(1, 13))).toBe(false);
    expect(open(keyring, a, 'ctx').toString()).toBe('same');
    expect(open(keyring, b, 'ctx').toString()).toBe('same');
  });

  it('keeps older ciphertext readable after the active key changes', () => {
    const old = seal(keyring, 'written before rotation', 'ctx');
    const rotated = rotatedKeyring(keyring, 'k-b');
    const fresh = seal(rotated, 'written after rotation', 'ctx');
    expect(fresh.keyId).toBe('k-b');
    expect(open(rotated, old, 'ctx').toString()).toBe('written before rotation');
    expect(open(rotated, fresh, 'ctx').toString()).toBe('written after rotation');
    // The old keyring cannot read what the new key wrote, and says which key it lacks.
    expect(() => open(keyring, fresh, 'ctx')).toThrow(/k-b/);
  });
});

describe('fingerprint', () => {
  const keyring = testKeyring();

  it('is 64 lower-case hex characters and deterministic', () => {
    const fp = fingerprint(keyring, 'ip', '1.2.3.4');
    expect(fp).toMatch(/^[0-9a-f]{64}$/);
    expect(fingerprint(keyring, 'ip', '1.2.3.4')).toBe(fp);
  });

  it('differs between values, domains and keys', () => {
    const fp = fingerprint(keyring, 'ip', '1.2.3.4');
    expect(fingerprint(keyring, 'ip', '1.2.3.5')).not.toBe(fp);
    expect(fingerprint(keyring, 'device_id', '1.2.3.4')).not.toBe(fp);
    expect(fingerprint(testKeyring(), 'ip', '1.2.3.4')).not.toBe(fp);
  });

  it('separates domain and value, so shifting characters between them changes the result', () => {
    expect(fingerprint(keyring, 'ip', 'x')).not.toBe(fingerprint(keyring, 'i', 'px'));
  });

  it('does not depend on which data key is active', () => {
    const rotated = rotatedKeyring(keyring, 'k-new');
    expect(fingerprint(rotated, 'ip', '1.2.3.4')).toBe(fingerprint(keyring, 'ip', '1.2.3.4'));
  });
});
