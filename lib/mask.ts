// Mask: turn a validated event into a row with no readable PII. IP and device ID become
// keyed fingerprints (comparable) plus AES-256-GCM ciphertext (recoverable only through
// the audited recovery workflow).
import { fingerprint, seal } from './crypto';
import type { Keyring } from './keyring';
import type { LoginRow } from './types';
import type { LoginEvent } from './validate';

/** The AAD that binds a PII ciphertext to its message and field. */
export const piiContext = (messageId: string, field: 'ip' | 'device_id' | 'body') => `${messageId}:${field}`;

export function mask(keyring: Keyring, messageId: string, event: LoginEvent, fallbackCreateDate: Date): LoginRow {
  const ip = seal(keyring, event.ip, piiContext(messageId, 'ip'));
  const deviceId = seal(keyring, event.deviceId, piiContext(messageId, 'device_id'));
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
