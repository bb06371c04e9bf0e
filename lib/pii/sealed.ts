// One-time sealing of a recovery result to the operator who asked for it. The requester
// makes a fresh X25519 key pair per request and signs only its public half into the
// request; the result is encrypted to it (ephemeral-static ECDH → HKDF-SHA256 →
// AES-256-GCM, in the manner of HPKE base mode), so it can travel through Temporal
// history, logs and the approvers' screens without anyone but the requester reading it.
// Only node:crypto primitives; nothing here is hand-rolled.
import crypto from 'node:crypto';
import { decodeStrictBase64 } from '../platform/base64';

const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const INFO_PREFIX = 'login-ingest sealed v1|';
/** hkdfSync refuses an `info` over 1024 bytes; the prefix takes some of it. */
export const MAX_CONTEXT_BYTES = 1024 - Buffer.byteLength(INFO_PREFIX, 'utf8');

export class SealedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealedError';
  }
}

export interface RecipientKeys {
  /** base64 of the raw 32-byte X25519 public key: what goes into the signed request. */
  publicKey: string;
  /** PKCS#8 PEM: stays with the requester, used once to open the result. */
  privateKeyPem: string;
}

export interface SealedBox {
  v: 1;
  /** base64 of the raw 32-byte X25519 public key made for this box only. */
  ephemeralPublicKey: string;
  /** base64, 12 bytes. */
  nonce: string;
  /** base64 of the AES-256-GCM ciphertext with its 16-byte tag appended. */
  ciphertext: string;
}

/** Strict base64: decodes to `bytes` bytes (at least `bytes` when `atLeast`) and is written the one canonical way. */
function decodeBase64(value: unknown, what: string, bytes: number, atLeast = false): Buffer {
  if (typeof value !== 'string') throw new SealedError(`${what} must be a base64 string`);
  const decoded = decodeStrictBase64(value, atLeast ? undefined : bytes);
  if (!decoded || decoded.length < bytes) {
    throw new SealedError(`${what} must be ${atLeast ? 'at least ' : ''}${bytes} bytes, base64-encoded`);
  }
  return decoded;
}

const rawPublicKey = (key: crypto.KeyObject): Buffer => Buffer.from(key.export({ format: 'jwk' }).x!, 'base64url');

/** A private key for the trial agreement in parseRecipientPublicKey; made on first use. */
let probeKey: crypto.KeyObject | undefined;

/**
 * Imports a base64 raw X25519 public key, or throws a SealedError saying what is wrong.
 * A trial key agreement rejects the low-order points (all-zero shared secret) now, rather
 * than when a result has to be sealed to them after the approvals.
 */
export function parseRecipientPublicKey(value: unknown, what = 'recipient public key'): crypto.KeyObject {
  const raw = decodeBase64(value, what, KEY_BYTES);
  let key: crypto.KeyObject;
  try {
    key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: raw.toString('base64url') }, format: 'jwk' });
  } catch (err) {
    throw new SealedError(`${what} is not an X25519 public key: ${(err as Error).message}`);
  }
  probeKey ??= crypto.generateKeyPairSync('x25519').privateKey;
  try {
    crypto.diffieHellman({ privateKey: probeKey, publicKey: key });
  } catch {
    throw new SealedError(`${what} is a low-order X25519 point: no shared secret can be agreed with it`);
  }
  return key;
}

function checkContext(context: unknown): Buffer {
  if (typeof context !== 'string' || !context.isWellFormed()) throw new SealedError('context must be a well-formed string');
  const bytes = Buffer.from(context, 'utf8');
  if (bytes.length > MAX_CONTEXT_BYTES) throw new SealedError(`context must be at most ${MAX_CONTEXT_BYTES} bytes of UTF-8`);
  return bytes;
}

/** The AES key for one box: HKDF-SHA256 over the X25519 shared secret, bound to both public keys and the context. */
function boxKey(
  privateKey: crypto.KeyObject,
  publicKey: crypto.KeyObject,
  ephemeralRaw: Buffer,
  recipientRaw: Buffer,
  context: Buffer,
): Buffer {
  const shared = crypto.diffieHellman({ privateKey, publicKey });
  const info = Buffer.concat([Buffer.from(INFO_PREFIX, 'utf8'), context]);
  const key = Buffer.from(crypto.hkdfSync('sha256', shared, Buffer.concat([ephemeralRaw, recipientRaw]), info, KEY_BYTES));
  shared.fill(0);
  return key;
}

export function newRecipientKeys(): RecipientKeys {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('x25519');
  return {
    publicKey: rawPublicKey(publicKey).toString('base64'),
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

/**
 * Encrypts `plaintext` so that only the holder of the private half of `recipientPublicKey`
 * can read it, and only under the same `context` (e.g. the request ID), which is both in
 * the key derivation and the GCM associated data.
 */
export function sealTo(recipientPublicKey: string, plaintext: Buffer | string, context: string): SealedBox {
  const recipient = parseRecipientPublicKey(recipientPublicKey);
  const contextBytes = checkContext(context);
  if (typeof plaintext !== 'string' && !Buffer.isBuffer(plaintext))
    throw new SealedError('plaintext must be a Buffer or a string');
  const ephemeral = crypto.generateKeyPairSync('x25519');
  const ephemeralRaw = rawPublicKey(ephemeral.publicKey);
  const key = boxKey(ephemeral.privateKey, recipient, ephemeralRaw, rawPublicKey(recipient), contextBytes);
  const nonce = crypto.randomBytes(NONCE_BYTES);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(contextBytes);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  key.fill(0);
  return {
    v: 1,
    ephemeralPublicKey: ephemeralRaw.toString('base64'),
    nonce: nonce.toString('base64'),
    ciphertext: ciphertext.toString('base64'),
  };
}

const BOX_FIELDS = ['ciphertext', 'ephemeralPublicKey', 'nonce', 'v'];

/**
 * Decrypts a box with the requester's private key. Throws a SealedError for a malformed
 * box or key, and one saying it cannot be opened for a wrong key, a wrong context or any
 * tampering (the three are indistinguishable by design).
 */
export function openSealed(box: SealedBox, recipientPrivateKeyPem: string, context: string): Buffer {
  if (typeof box !== 'object' || box === null || Array.isArray(box)) throw new SealedError('sealed box must be an object');
  const fields = Object.keys(box).sort();
  if (fields.join() !== BOX_FIELDS.join())
    throw new SealedError(
      `sealed box must have exactly the fields ${BOX_FIELDS.join(', ')} (has ${fields.join(', ') || 'none'})`,
    );
  if (box.v !== 1) throw new SealedError(`sealed box version ${JSON.stringify(box.v)} is not supported (expected 1)`);
  const ephemeralRaw = decodeBase64(box.ephemeralPublicKey, 'sealed box ephemeralPublicKey', KEY_BYTES);
  const nonce = decodeBase64(box.nonce, 'sealed box nonce', NONCE_BYTES);
  const sealed = decodeBase64(box.ciphertext, 'sealed box ciphertext', TAG_BYTES, true);
  const contextBytes = checkContext(context);

  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey(recipientPrivateKeyPem);
  } catch (err) {
    throw new SealedError(`recipient private key is not a readable PEM private key: ${(err as Error).message}`);
  }
  if (privateKey.asymmetricKeyType !== 'x25519') {
    throw new SealedError(`recipient private key is a ${privateKey.asymmetricKeyType ?? 'unknown'} key, expected X25519`);
  }

  try {
    const ephemeral = crypto.createPublicKey({
      key: { kty: 'OKP', crv: 'X25519', x: ephemeralRaw.toString('base64url') },
      format: 'jwk',
    });
    const key = boxKey(privateKey, ephemeral, ephemeralRaw, rawPublicKey(crypto.createPublicKey(privateKey)), contextBytes);
    const decipher = crypto.createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    key.fill(0);
    decipher.setAAD(contextBytes);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new SealedError('sealed box cannot be opened: wrong private key, wrong context, or the box was altered');
  }
}
