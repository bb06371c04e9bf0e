// Mask: turn a validated event into a row with no readable PII. IP and device ID become
// keyed fingerprints (comparable) plus AES-256-GCM ciphertext (recoverable only through
// the audited recovery workflow).
import { fingerprint, open, seal, type Sealed } from '../pii/crypto';
import type { Keyring } from '../pii/keyring';
import type { LoginRow } from '../contract/types';
import type { LoginEvent } from './validate';

export type PiiField = 'ip' | 'device_id' | 'body';

/** The AAD that binds a PII ciphertext to its message and field. */
export const piiContext = (messageId: string, field: PiiField) => `${messageId}:${field}`;

/** Encrypts one PII value of a message with the active key, bound to that message and field. */
export const sealPii = (keyring: Keyring, value: Uint8Array | string, messageId: string, field: PiiField): Sealed =>
  seal(keyring, value, piiContext(messageId, field));

/** Decrypts one stored PII value (a bytea column and its pii_key_id) of a message. */
export const openPii = (keyring: Keyring, keyId: string, blob: Uint8Array, messageId: string, field: PiiField): Buffer =>
  open(keyring, { keyId, blob: Buffer.from(blob) }, piiContext(messageId, field));

export function mask(keyring: Keyring, messageId: string, event: LoginEvent, fallbackCreateDate: Date): LoginRow {
  const ip = sealPii(keyring, event.ip, messageId, 'ip');
  const deviceId = sealPii(keyring, event.deviceId, messageId, 'device_id');
  const [major, minor, patch] = event.appVersionParts;
  return {
    messageId,
    userId: event.userId,
    deviceType: event.deviceType,
    maskedIp: fingerprint(keyring, 'ip', event.ip),
    maskedDeviceId: fingerprint(keyring, 'device_id', event.deviceId),
    ipCiphertext: ip.blob.toString('base64'),
    deviceIdCiphertext: deviceId.blob.toString('base64'),
    piiKeyId: ip.keyId,
    locale: event.locale,
    appVersion: event.appVersion,
    appVersionMajor: major,
    appVersionMinor: minor,
    appVersionPatch: patch,
    loginFingerprint: fingerprint(
      keyring,
      'login',
      JSON.stringify([event.userId, event.deviceType, event.ip, event.deviceId, event.locale, event.appVersion]),
    ),
    createDate: (event.createDate ?? fallbackCreateDate).toISOString(),
  };
}
