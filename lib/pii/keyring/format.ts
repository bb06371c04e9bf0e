// Key file formats: the in-memory Keyring, the two versions of the key file, and their
// parsing. Pure: no file system, no unwrapping (envelope.ts unwraps version 2).
//
//   version 1 (plain): {"activeKeyId", "keys": {id: base64}, "fingerprintKey": base64}
//   version 2 (envelope, see lib/pii/kek.ts): every key wrapped by a key-encryption key
//     {"version": 2, "kek": "local:1a2b3c4d", "activeKeyId": "k-20261126-ab12cd",
//      "keys": {"k-20261126-ab12cd": {"wrapped": base64, "createdAt": ISO}},
//      "fingerprintKey": {"wrapped": base64}}
import crypto from 'node:crypto';
import { decodeStrictBase64 } from '../../platform/base64';
import { isRecord } from '../../platform/guards';

export interface Keyring {
  /**
   * `activeKeyId` and `keys` are replaced in place by refreshKeyring (a new Map each time,
   * never mutated): read them from the keyring at each use instead of keeping a copy.
   */
  activeKeyId: string;
  keys: ReadonlyMap<string, Buffer>;
  /** Never changes for the life of a keyring: fingerprints must stay comparable. */
  readonly fingerprintKey: Buffer;
}

/** The plain (version 1) form of a key file, also used for keys from the environment. Keys are base64 of 32 random bytes. */
export interface KeyringFile {
  activeKeyId: string;
  keys: Record<string, string>;
  fingerprintKey: string;
}

/** The envelope (version 2) form of a key file: keys wrapped by the key-encryption key named in `kek`. */
export interface KeyringFileV2 {
  version: 2;
  kek: string;
  activeKeyId: string;
  keys: Record<string, { wrapped: string; createdAt: string }>;
  fingerprintKey: { wrapped: string };
}

/** The associated data a data key is wrapped with. */
export const dataKeyContext = (keyId: string): string => `data-key:${keyId}`;
/** The associated data the fingerprint key is wrapped with. */
export const FINGERPRINT_KEY_CONTEXT = 'fingerprint-key';

/** What a key ID may be (data keys and codec keys alike). */
export const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

export class KeyringError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyringError';
  }
}

/** A 32-byte key in canonical base64 (whitespace around or inside is ignored), or a KeyringError naming `where`. */
export function decodeKey(value: string, where: string): Buffer {
  const key = decodeStrictBase64(value.replace(/\s/g, ''), 32);
  if (!key) throw new KeyringError(`${where} must be 32 bytes, base64-encoded (make one with: openssl rand -base64 32)`);
  return key;
}

function checkBase64(value: string, where: string): void {
  if (!decodeStrictBase64(value)?.length) throw new KeyringError(`${where} must be non-empty base64`);
}

/** Validates a plain (version 1) key file's content; `source` names it in errors. */
export function keyringFromFile(file: KeyringFile, source: string): Keyring {
  if (typeof file !== 'object' || file === null || typeof file.keys !== 'object' || file.keys === null) {
    throw new KeyringError(`${source}: expected {"activeKeyId", "keys": {id: base64}, "fingerprintKey"}`);
  }
  const keys = new Map<string, Buffer>();
  for (const [id, value] of Object.entries(file.keys)) {
    if (!KEY_ID.test(id)) throw new KeyringError(`${source}: key ID ${JSON.stringify(id)} must match ${KEY_ID}`);
    keys.set(id, decodeKey(String(value), `${source}: key ${id}`));
  }
  if (!keys.has(file.activeKeyId)) {
    throw new KeyringError(
      `${source}: activeKeyId ${JSON.stringify(file.activeKeyId)} is not one of the keys (${[...keys.keys()].join(', ') || 'none'})`,
    );
  }
  return {
    activeKeyId: file.activeKeyId,
    keys,
    fingerprintKey: decodeKey(String(file.fingerprintKey), `${source}: fingerprintKey`),
  };
}

// Version 2

export interface CheckedV2 {
  kek: string;
  activeKeyId: string;
  entries: [string, { wrapped: string; createdAt: string }][];
  fingerprintWrapped: string;
}

const V2_SHAPE =
  'expected {"version": 2, "kek", "activeKeyId", "keys": {id: {"wrapped", "createdAt"}}, "fingerprintKey": {"wrapped"}}';

export function checkV2(content: Record<string, unknown>, source: string): CheckedV2 {
  const { kek, activeKeyId, keys, fingerprintKey } = content;
  if (typeof kek !== 'string' || !kek || typeof activeKeyId !== 'string' || !isRecord(keys) || !isRecord(fingerprintKey)) {
    throw new KeyringError(`${source}: ${V2_SHAPE}`);
  }
  const entries: CheckedV2['entries'] = [];
  for (const [id, entry] of Object.entries(keys)) {
    if (!KEY_ID.test(id)) throw new KeyringError(`${source}: key ID ${JSON.stringify(id)} must match ${KEY_ID}`);
    if (
      !isRecord(entry) ||
      typeof entry.wrapped !== 'string' ||
      typeof entry.createdAt !== 'string' ||
      Number.isNaN(Date.parse(entry.createdAt))
    ) {
      throw new KeyringError(`${source}: key ${id}: expected {"wrapped": base64, "createdAt": ISO date}`);
    }
    checkBase64(entry.wrapped, `${source}: key ${id}: wrapped`);
    entries.push([id, { wrapped: entry.wrapped, createdAt: entry.createdAt }]);
  }
  if (!entries.some(([id]) => id === activeKeyId)) {
    throw new KeyringError(
      `${source}: activeKeyId ${JSON.stringify(activeKeyId)} is not one of the keys (${entries.map(([id]) => id).join(', ') || 'none'})`,
    );
  }
  if (typeof fingerprintKey.wrapped !== 'string')
    throw new KeyringError(`${source}: fingerprintKey: expected {"wrapped": base64}`);
  checkBase64(fingerprintKey.wrapped, `${source}: fingerprintKey: wrapped`);
  return { kek, activeKeyId, entries, fingerprintWrapped: fingerprintKey.wrapped };
}

export function toV2Json(file: CheckedV2): KeyringFileV2 {
  return {
    version: 2,
    kek: file.kek,
    activeKeyId: file.activeKeyId,
    keys: Object.fromEntries(file.entries), // fromEntries defines own properties, whatever the IDs
    fingerprintKey: { wrapped: file.fingerprintWrapped },
  };
}

export function newKeyId(now: Date, taken: { has(id: string): boolean }): string {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '');
  for (;;) {
    const id = `k-${day}-${crypto.randomBytes(3).toString('hex')}`;
    if (!taken.has(id)) return id;
  }
}

/** Plain (version 1) content with one new data key and a fingerprint key: for tests and for keys in the environment. */
export function newKeyringFile(now = new Date()): KeyringFile {
  const id = newKeyId(now, new Set());
  return {
    activeKeyId: id,
    keys: { [id]: crypto.randomBytes(32).toString('base64') },
    fingerprintKey: crypto.randomBytes(32).toString('base64'),
  };
}
