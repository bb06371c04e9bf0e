// Why re-encryption skips a stored value (lib/pii/reencrypt.ts openOrReason): the reason
// code its `reencrypt_skipped` audit entry records. The skipping itself runs on real
// services in test/integration/keys.test.ts.
import { openOrReason } from '../../lib/pii/reencrypt';
import { sealPii } from '../../lib/pipeline/mask';
import { testKeyring } from './helpers';

const keyring = testKeyring({ ids: ['k-old', 'k-new'], active: 'k-old' });
const { keyId, blob } = sealPii(keyring, '203.0.113.7', 'm-1', 'ip');

test('a value that decrypts comes back as it was sealed', () => {
  expect(openOrReason(keyring, keyId, blob, 'm-1', 'ip')).toEqual({ plain: Buffer.from('203.0.113.7') });
});

test.each([
  [
    'an altered byte',
    'auth_failed',
    () =>
      openOrReason(keyring, keyId, Buffer.concat([blob.subarray(0, -1), Buffer.from([blob[blob.length - 1] ^ 1])]), 'm-1', 'ip'),
  ],
  ["another row's value", 'auth_failed', () => openOrReason(keyring, keyId, blob, 'm-2', 'ip')],
  ["another field's value", 'auth_failed', () => openOrReason(keyring, keyId, blob, 'm-1', 'device_id')],
  ['a key no longer in the file', 'unknown_key', () => openOrReason(testKeyring({ ids: ['k-new'] }), keyId, blob, 'm-1', 'ip')],
  ['bytes that are no sealed value', 'not_a_blob', () => openOrReason(keyring, keyId, Buffer.from('203.0.113.7'), 'm-1', 'ip')],
] as const)('%s: %s', (_what, reason, open) => {
  expect(open()).toEqual({ reason });
});
