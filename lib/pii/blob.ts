// The one AES-256-GCM format this project stores: a self-describing blob
//
//   version (1 byte, = 1) ‖ nonce (12 bytes) ‖ tag (16 bytes) ‖ ciphertext
//
// written by lib/pii/crypto.ts (the PII columns and quarantine bodies, and the payload
// codec) and lib/pii/kek.ts (wrapped keys in the key file). The associated data binds each
// blob to where it belongs (a row and field, a key ID). This module only lays out and
// checks the bytes; choosing keys and nonces stays with the callers. Existing ciphertext
// and key files are in this format: it must never change (a new layout gets a new version).
// (The sealed recovery result, lib/pii/sealed.ts, is a JSON box of base64 fields instead,
// with the tag after the ciphertext: another format, kept as it is.)
import crypto from 'node:crypto';

export const BLOB_VERSION = 1;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
/** Version, nonce and tag: a blob of an empty plaintext is this long. */
export const BLOB_OVERHEAD = 1 + NONCE_BYTES + TAG_BYTES;

/** Whether `blob` is laid out as this format (version 1, long enough for nonce and tag); says nothing of its authenticity. */
export const isBlob = (blob: Uint8Array): boolean => blob.length >= BLOB_OVERHEAD && blob[0] === BLOB_VERSION;

/** Encrypts `plaintext` under `key` with `nonce` (12 bytes, never used twice with one key), binding `aad`. */
export function sealBlob(key: crypto.CipherKey, nonce: Buffer, plaintext: Uint8Array | string, aad: string): Buffer {
  if (nonce.length !== NONCE_BYTES) throw new RangeError(`an AES-GCM nonce is ${NONCE_BYTES} bytes, not ${nonce.length}`);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.from([BLOB_VERSION]), nonce, cipher.getAuthTag(), ciphertext]);
}

/**
 * Decrypts a blob. The caller checks isBlob first (and says what it expected); here a blob
 * that is not one throws a RangeError, and a wrong key, wrong `aad` or any altered byte
 * throws node:crypto's authentication error.
 */
export function openBlob(key: crypto.CipherKey, blob: Buffer, aad: string): Buffer {
  if (!isBlob(blob)) throw new RangeError('not an AES-GCM blob of version 1');
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, blob.subarray(1, 1 + NONCE_BYTES));
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(blob.subarray(1 + NONCE_BYTES, BLOB_OVERHEAD));
  return Buffer.concat([decipher.update(blob.subarray(BLOB_OVERHEAD)), decipher.final()]);
}
