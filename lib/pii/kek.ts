// Key-encryption keys (KEK): envelope encryption for the PII keyring.
//
// The data keys that encrypt PII (AES-256, one active, older ones kept for reading) and the
// HMAC fingerprint key are random 32-byte values. On disk they are never stored as they
// are: each one is "wrapped" (encrypted) under a key-encryption key, and the key file
// (lib/pii/keyring/, format version 2) holds only the wrapped bytes plus the KEK's ID. A
// process unwraps them once at start-up (and again when the file changes) and keeps the
// plain keys in memory only. So:
//   * a copied key file, backup or container image reveals nothing without the KEK;
//   * rotating a data key only rewrites the small key file (nothing else is re-encrypted:
//     older ciphertext names its key ID and the old keys stay in the file);
//   * the KEK is one value, kept apart from the key file (and, with another KeyWrapper,
//     it could live in a KMS/HSM and never leave it).
//
// Every wrap binds a context string as associated data: `data-key:<key id>` for a data
// key, `fingerprint-key` for the HMAC key. A wrapped value copied under another ID or into
// the fingerprint slot fails to unwrap instead of silently becoming a different key.
//
// LocalKeyWrapper is the built-in KEK: AES-256-GCM under a 32-byte master key given as
// PII_MASTER_KEY / PII_MASTER_KEY_FILE (or, in development only, generated once into
// <DATA_DIR>/keys/master.key). Its ID, `local:` + the first 8 hex digits of SHA-256 of the
// master key, is written into the key file so a wrong master key is reported by name
// instead of as an authentication failure.
//
// LocalKeyWrapper is the only KeyWrapper this project has. A KMS or HSM would be another
// implementation of the interface below (README, "Masking and keys", says what that takes);
// none is included, because none is tested.
import crypto from 'node:crypto';
import { BLOB_OVERHEAD, isBlob, NONCE_BYTES, openBlob, sealBlob } from './blob';

export interface KeyWrapper {
  /** Names the key-encryption key; written into the key file as "kek" and checked on load. */
  readonly id: string;
  /** Encrypts a 32-byte key, binding `context` (e.g. `data-key:<id>`) as associated data. */
  wrap(key: Buffer, context: string): Promise<Buffer>;
  /** Reverses `wrap`; rejects when the bytes, the context or the KEK do not match. */
  unwrap(wrapped: Buffer, context: string): Promise<Buffer>;
}

/** AES-256-GCM under a local 32-byte master key. Wrapped form: the blob of lib/pii/blob.ts, version (1) ‖ nonce (12) ‖ tag (16) ‖ ciphertext. */
export class LocalKeyWrapper implements KeyWrapper {
  readonly id: string;
  // A private field: the master key never shows up in util.inspect, JSON or error output.
  readonly #masterKey: Buffer;

  constructor(masterKey: Buffer) {
    if (!Buffer.isBuffer(masterKey) || masterKey.length !== 32) throw new Error('The master key must be 32 bytes');
    this.#masterKey = Buffer.from(masterKey); // a copy: the caller may reuse or zero its buffer
    this.id = `local:${crypto.createHash('sha256').update(this.#masterKey).digest('hex').slice(0, 8)}`;
  }

  async wrap(key: Buffer, context: string): Promise<Buffer> {
    return sealBlob(this.#masterKey, crypto.randomBytes(NONCE_BYTES), key, context);
  }

  async unwrap(wrapped: Buffer, context: string): Promise<Buffer> {
    // A wrapped key is never empty: a blob of the bare overhead is not one.
    if (!isBlob(wrapped) || wrapped.length === BLOB_OVERHEAD)
      throw new Error('not a value wrapped by a local key-encryption key');
    try {
      return openBlob(this.#masterKey, wrapped, context);
    } catch {
      throw new Error(
        `authentication failed (another master key, another context than ${JSON.stringify(context)}, or altered bytes)`,
      );
    }
  }
}
