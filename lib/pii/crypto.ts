// lib/pii/: PII protection. The keys (keyring/, start at keyring/index.ts for their story;
// the master key's wrapping in kek.ts), the two primitives here (AES-256-GCM for values
// that must come back, HMAC-SHA256 fingerprints for values only compared) over the blob
// format (blob.ts), the Temporal payload codec (codec.ts) and its server for the Web UI
// (codec-server.ts, codec-payload-json.ts, codec-token.ts), boxes sealed to one operator
// (sealed.ts), and re-encryption after a rotation (reencrypt.ts). It may import lib/platform,
// lib/contract, lib/recovery's audit trail and lib/pipeline's mask (reencrypt.ts), never
// workflows/, activities/, cli/ or the processes (test/unit/layout.test.ts checks); this file
// and blob.ts stay pure (node:crypto only), as lib/pipeline imports them.
//
// The two primitives that keep PII unreadable: AES-256-GCM for values that must come
// back (recovery) and HMAC-SHA256 fingerprints for values that only need comparing.
import crypto from 'node:crypto';
import { isBlob, NONCE_BYTES, openBlob, sealBlob } from './blob';
import type { Keyring } from './keyring';

// Per-message costs, measured: a raw key Buffer is imported anew by every createCipheriv
// and createHmac, and every randomBytes(12) is a call into the system's CSPRNG. A key
// imported once (KeyObject) and nonces cut from a pool of CSPRNG bytes make mask() about
// half as expensive.
const keyObjects = new WeakMap<Buffer, crypto.KeyObject>();
function keyObject(key: Buffer): crypto.KeyObject {
  let k = keyObjects.get(key);
  if (!k) keyObjects.set(key, (k = crypto.createSecretKey(key)));
  return k;
}

const noncePool = Buffer.alloc(NONCE_BYTES * 512);
let nonceOffset = noncePool.length;
/** 12 fresh bytes from the CSPRNG (refilled 512 nonces at a time); each is used once. */
function randomNonce(): Buffer {
  if (nonceOffset + NONCE_BYTES > noncePool.length) {
    crypto.randomFillSync(noncePool);
    nonceOffset = 0;
  }
  // A copy: the pool is overwritten on the next refill.
  return Buffer.from(noncePool.subarray(nonceOffset, (nonceOffset += NONCE_BYTES)));
}

export interface Sealed {
  keyId: string;
  /** version (1 byte) ‖ nonce (12) ‖ tag (16) ‖ ciphertext: lib/pii/blob.ts */
  blob: Buffer;
}

/**
 * Encrypts with the active key and a random nonce. `context` is bound as additional
 * authenticated data (e.g. `<message id>:ip`), so a ciphertext moved to another row or
 * field fails to decrypt instead of revealing a value in the wrong place.
 */
export function seal(keyring: Pick<Keyring, 'activeKeyId' | 'keys'>, plaintext: Uint8Array | string, context: string): Sealed {
  const keyId = keyring.activeKeyId;
  return { keyId, blob: sealBlob(keyObject(keyring.keys.get(keyId)!), randomNonce(), plaintext, context) };
}

export function open(keyring: Pick<Keyring, 'activeKeyId' | 'keys'>, sealed: Sealed, context: string): Buffer {
  const key = keyring.keys.get(sealed.keyId);
  if (!key) throw new Error(`No key with ID ${JSON.stringify(sealed.keyId)} in the keyring: was it removed after a rotation?`);
  if (!isBlob(sealed.blob)) throw new Error('Not a sealed value (unknown format)');
  return openBlob(keyObject(key), sealed.blob, context);
}

/**
 * Keyed fingerprint: HMAC-SHA256 over a domain tag and the value, hex. Equal values give
 * equal fingerprints within a domain; without the key a small value space (all IPv4
 * addresses) cannot be enumerated offline. It does not stop a guess by whoever can both
 * publish to the queue (the pipeline fingerprints what they send) and read the
 * fingerprints: README, "What the masks do not stop".
 */
export function fingerprint(keyring: Keyring, domain: string, value: string): string {
  return crypto.createHmac('sha256', keyObject(keyring.fingerprintKey)).update(domain).update('\0').update(value).digest('hex');
}
