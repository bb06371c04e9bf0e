import { open } from '../../lib/pii/crypto';
import { mask, piiContext } from '../../lib/pipeline/mask';
import type { LoginRow } from '../../lib/contract/types';
import type { LoginEvent } from '../../lib/pipeline/validate';
import { rotatedKeyring, testKeyring } from './helpers';

const FALLBACK = new Date('2024-05-01T12:00:00.000Z');

function loginEvent(overrides: Partial<LoginEvent> = {}): LoginEvent {
  return {
    userId: '424cdd21-063a-43a7-b91b-7ca1a833afae',
    deviceType: 'android',
    ip: '199.172.111.135',
    deviceId: '593-47-5928',
    locale: 'RU',
    appVersion: '2.3.0',
    appVersionParts: [2, 3, 0],
    createDate: null,
    ...overrides,
  };
}

const openField = (
  keyring: ReturnType<typeof testKeyring>,
  row: LoginRow,
  field: 'ip' | 'device_id',
  messageId = row.messageId,
) =>
  open(
    keyring,
    { keyId: row.piiKeyId, blob: Buffer.from(field === 'ip' ? row.ipCiphertext : row.deviceIdCiphertext, 'base64') },
    piiContext(messageId, field),
  ).toString('utf8');

describe('mask', () => {
  const keyring = testKeyring({ ids: ['k-mask'] });

  it('copies the non-PII fields and splits the app version', () => {
    const row = mask(keyring, 'm-1', loginEvent({ appVersion: '0.96', appVersionParts: [0, 96, 0], locale: null }), FALLBACK);
    expect(row).toMatchObject({
      messageId: 'm-1',
      userId: '424cdd21-063a-43a7-b91b-7ca1a833afae',
      deviceType: 'android',
      locale: null,
      appVersion: '0.96',
      appVersionMajor: 0,
      appVersionMinor: 96,
      appVersionPatch: 0,
      piiKeyId: 'k-mask',
    });
  });

  it('gives equal masked_ip for equal IPs and different ones for different IPs', () => {
    const a = mask(keyring, 'm-1', loginEvent({ ip: '10.0.0.1' }), FALLBACK);
    const b = mask(keyring, 'm-2', loginEvent({ ip: '10.0.0.1', userId: 'someone-else' }), FALLBACK);
    const c = mask(keyring, 'm-3', loginEvent({ ip: '10.0.0.2' }), FALLBACK);
    expect(a.maskedIp).toBe(b.maskedIp);
    expect(a.maskedIp).not.toBe(c.maskedIp);
  });

  it('gives equal masked_device_id for equal device IDs and different ones otherwise', () => {
    const a = mask(keyring, 'm-1', loginEvent({ deviceId: 'dev-1' }), FALLBACK);
    const b = mask(keyring, 'm-2', loginEvent({ deviceId: 'dev-1', ip: '8.8.8.8' }), FALLBACK);
    const c = mask(keyring, 'm-3', loginEvent({ deviceId: 'dev-2' }), FALLBACK);
    expect(a.maskedDeviceId).toBe(b.maskedDeviceId);
    expect(a.maskedDeviceId).not.toBe(c.maskedDeviceId);
  });

  it('masks the same value differently as an IP and as a device ID (separate domains)', () => {
    const row = mask(keyring, 'm-1', loginEvent({ ip: '10.0.0.1', deviceId: '10.0.0.1' }), FALLBACK);
    expect(row.maskedIp).not.toBe(row.maskedDeviceId);
  });

  it('produces 64-hex-character masks that do not contain the plaintext', () => {
    const event = loginEvent();
    const row = mask(keyring, 'm-1', event, FALLBACK);
    for (const masked of [row.maskedIp, row.maskedDeviceId, row.loginFingerprint]) {
      expect(masked).toMatch(/^[0-9a-f]{64}$/);
      expect(masked).not.toContain(event.ip);
      expect(masked).not.toContain(event.deviceId);
    }
    const text = JSON.stringify(row);
    expect(text).not.toContain(event.ip);
    expect(text).not.toContain(event.deviceId);
  });

  it('gives different masks under keyrings with different fingerprint keys', () => {
    const other = testKeyring({ ids: ['k-mask'], keys: { 'k-mask': keyring.keys.get('k-mask')! } });
    const a = mask(keyring, 'm-1', loginEvent(), FALLBACK);
    const b = mask(other, 'm-1', loginEvent(), FALLBACK);
    expect(b.maskedIp).not.toBe(a.maskedIp);
    expect(b.maskedDeviceId).not.toBe(a.maskedDeviceId);
    expect(b.loginFingerprint).not.toBe(a.loginFingerprint);
  });

  it('keeps masks stable across a rotation of the data keys', () => {
    const a = mask(keyring, 'm-1', loginEvent(), FALLBACK);
    const b = mask(rotatedKeyring(keyring, 'k-next'), 'm-1', loginEvent(), FALLBACK);
    expect(b.piiKeyId).toBe('k-next');
    expect(b.maskedIp).toBe(a.maskedIp);
    expect(b.maskedDeviceId).toBe(a.maskedDeviceId);
    expect(b.loginFingerprint).toBe(a.loginFingerprint);
  });

  it('stores IP and device ID as ciphertext that opens under this message’s context only', () => {
    const row = mask(keyring, 'm-42', loginEvent(), FALLBACK);
    expect(openField(keyring, row, 'ip')).toBe('199.172.111.135');
    expect(openField(keyring, row, 'device_id')).toBe('593-47-5928');
    expect(() => openField(keyring, row, 'ip', 'm-43')).toThrow();
    // A ciphertext moved to the other column does not open either.
    expect(() =>
      open(keyring, { keyId: row.piiKeyId, blob: Buffer.from(row.ipCiphertext, 'base64') }, piiContext('m-42', 'device_id')),
    ).toThrow();
  });

  it('encrypts with a fresh nonce each time', () => {
    const a = mask(keyring, 'm-1', loginEvent(), FALLBACK);
    const b = mask(keyring, 'm-1', loginEvent(), FALLBACK);
    expect(a.ipCiphertext).not.toBe(b.ipCiphertext);
    expect(a.deviceIdCiphertext).not.toBe(b.deviceIdCiphertext);
    expect(a.maskedIp).toBe(b.maskedIp);
  });

  describe('loginFingerprint', () => {
    const fp = (overrides: Partial<LoginEvent>, messageId = 'm-1') =>
      mask(keyring, messageId, loginEvent(overrides), FALLBACK).loginFingerprint;

    it('is equal for identical events under different message IDs', () => {
      expect(fp({}, 'm-1')).toBe(fp({}, 'm-2'));
    });

    it.each<[string, Partial<LoginEvent>]>([
      ['userId', { userId: 'another-user' }],
      ['deviceType', { deviceType: 'ios' }],
      ['ip', { ip: '199.172.111.136' }],
      ['deviceId', { deviceId: '593-47-5929' }],
      ['locale', { locale: 'RU2' }],
      ['locale (null)', { locale: null }],
      ['appVersion', { appVersion: '2.3.1', appVersionParts: [2, 3, 1] }],
    ])('differs when %s differs', (_field, change) => {
      expect(fp(change)).not.toBe(fp({}));
    });

    it('cannot be confused by moving characters between fields', () => {
      expect(fp({ userId: 'ab', deviceType: 'c' })).not.toBe(fp({ userId: 'a', deviceType: 'bc' }));
    });

    it('does not depend on the time of the login (the same login re-sent is a duplicate)', () => {
      expect(fp({ createDate: new Date('2024-01-01T00:00:00Z') })).toBe(fp({ createDate: null }));
    });
  });

  describe('createDate', () => {
    it('uses the event’s own date when it has one', () => {
      const row = mask(keyring, 'm-1', loginEvent({ createDate: new Date('2024-03-04T05:06:07.089Z') }), FALLBACK);
      expect(row.createDate).toBe('2024-03-04T05:06:07.089Z');
    });

    it('falls back to the given SentTimestamp date when the event has none', () => {
      const row = mask(keyring, 'm-1', loginEvent({ createDate: null }), FALLBACK);
      expect(row.createDate).toBe(FALLBACK.toISOString());
    });
  });
});
