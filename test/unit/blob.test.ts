import crypto from 'node:crypto';
import { BLOB_OVERHEAD, isBlob, NONCE_BYTES, openBlob, sealBlob } from '../../lib/pii/blob';
import { open } from '../../lib/pii/crypto';
import { LocalKeyWrapper } from '../../lib/pii/kek';

// Written by the code before lib/pii/blob.ts existed (crypto.ts seal and kek.ts wrap, each
// with its own copy of the layout): stored ciphertext and key files look like this, and
// must stay readable.
const OLD_SEALED_IP = 'AbU0QFHu7GydzeHA7ObS3HWQdJZmrK1cQ2HEbTboJ/BIiaRteI+hSw=='; // key 32×0x01, aad "msg-1:ip", "203.0.113.7"
const OLD_WRAPPED_KEY = 'AZhkDK0F0ptFIffzzY8YNZbxYgnY4ZHrFwwwBPwp1Xic33Bm0wJHtwiI2vD26pYNcd4tZst87AJRZNi3Kg=='; // master 32×0x07, "data-key:k-20260101-aaaaaa", 32×0x01

describe('the AES-GCM blob (version ‖ nonce ‖ tag ‖ ciphertext)', () => {
  const key = crypto.randomBytes(32);

  it('lays out version 1, the nonce, the tag and the ciphertext, and opens only with the same key and associated data', () => {
    const nonce = crypto.randomBytes(NONCE_BYTES);
    const blob = sealBlob(key, nonce, 'hello', 'row-1:ip');
    expect(blob[0]).toBe(1);
    expect(blob.subarray(1, 13).equals(nonce)).toBe(true);
    expect(blob.length).toBe(BLOB_OVERHEAD + 5);
    expect(openBlob(key, blob, 'row-1:ip').toString()).toBe('hello');
    expect(() => openBlob(key, blob, 'row-2:ip')).toThrow(/authenticate/);
    expect(() => openBlob(crypto.randomBytes(32), blob, 'row-1:ip')).toThrow(/authenticate/);
    const altered = Buffer.from(blob);
    altered[blob.length - 1] ^= 1;
    expect(() => openBlob(key, altered, 'row-1:ip')).toThrow(/authenticate/);
  });

  it('holds an empty plaintext in exactly the overhead, and tells blobs from other bytes', () => {
    const empty = sealBlob(key, crypto.randomBytes(NONCE_BYTES), '', 'x');
    expect(empty.length).toBe(BLOB_OVERHEAD);
    expect(openBlob(key, empty, 'x').length).toBe(0);
    expect(isBlob(empty)).toBe(true);
    expect(isBlob(empty.subarray(0, BLOB_OVERHEAD - 1))).toBe(false);
    expect(isBlob(Buffer.concat([Buffer.from([2]), empty.subarray(1)]))).toBe(false);
    expect(() => openBlob(key, empty.subarray(0, 10), 'x')).toThrow(RangeError);
  });

  it('refuses a nonce that is not 12 bytes', () => {
    expect(() => sealBlob(key, crypto.randomBytes(16), 'x', 'y')).toThrow(/12 bytes/);
  });

  it('still reads a PII ciphertext and a wrapped key written in the format before this module', async () => {
    const dataKey = Buffer.alloc(32, 1);
    const keyring = { activeKeyId: 'k', keys: new Map([['k', dataKey]]) };
    expect(open(keyring, { keyId: 'k', blob: Buffer.from(OLD_SEALED_IP, 'base64') }, 'msg-1:ip').toString()).toBe('203.0.113.7');
    expect(openBlob(dataKey, Buffer.from(OLD_SEALED_IP, 'base64'), 'msg-1:ip').toString()).toBe('203.0.113.7');
    const unwrapped = await new LocalKeyWrapper(Buffer.alloc(32, 7)).unwrap(
      Buffer.from(OLD_WRAPPED_KEY, 'base64'),
      'data-key:k-20260101-aaaaaa',
    );
    expect(unwrapped.equals(dataKey)).toBe(true);
  });
});
