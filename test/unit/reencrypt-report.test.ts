// What `keys reencrypt` prints of a finished re-encryption (cli/keys.ts reencryptReport).
import { reencryptReport } from '../../cli/keys';

test('rows that could not be decrypted are reported next to the ones moved', () => {
  expect(
    reencryptReport({ reencrypted: { user_logins: 11, quarantine: 1 }, skipped: { user_logins: 1, quarantine: 2 } }, 'k-new'),
  ).toEqual([
    'Re-encrypted 11 row(s) and 1 quarantine bod(ies) to key k-new.',
    'Skipped 1 row(s) and 2 quarantine bod(ies) that cannot be decrypted: left as they are, under their old key, each audited as reencrypt_skipped in pii_audit_log (table, message ID, key ID, field, reason).',
  ]);
});

test('nothing skipped, or a summary from a worker older than `skipped`: only what moved', () => {
  const moved = ['Re-encrypted 3 row(s) and 0 quarantine bod(ies) to the recorded key.'];
  expect(reencryptReport({ reencrypted: { user_logins: 3, quarantine: 0 }, skipped: { user_logins: 0, quarantine: 0 } })).toEqual(
    moved,
  );
  expect(reencryptReport({ reencrypted: { user_logins: 3, quarantine: 0 } } as never)).toEqual(moved);
});
