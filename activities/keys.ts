// The re-encryption activity: one page of rows (or quarantine bodies) decrypted and sealed
// again under the key of the newest recorded rotation. It runs on the ingest task queue
// (the worker holds the data keys), where anyone with access to the namespace can schedule
// it from a workflow of their own, with any input, with plain payloads too (only the
// recovery worker's codec refuses those). So it trusts neither its caller nor its input.
//
// What such a caller could make it do before it checked anything:
//  * Read values: no. No plaintext or ciphertext leaves it; what came back was counts, the
//    last row ID looked at and the active key's ID, and errors naming key IDs.
//  * Write chosen ciphertext: no. It writes only what it decrypted, under the key that the
//    worker's key file made active; no input names a key or a value.
//  * Move data to the wrong key: yes. It moved every row not under "the active key" of
//    whichever worker took the task. A worker whose key file is behind (hosts get a new key
//    file one by one; a restored backup; a file edited by hand) has an older key active, and
//    re-encryption there moves the rows written since the rotation back to that older key:
//    the one the rotation was made to retire, perhaps because it leaked. A foreign workflow
//    could schedule pages until one landed on such a worker.
//  * Force work: decrypt and rewrite whole tables at a time of its choosing, with `limit`
//    unbounded (a billion rows loaded into one worker's memory, one heartbeat for all).
//  * Odd input: any table name but `user_logins` re-encrypted the quarantine; afterId went
//    to BigInt (`-1`, `0x10`, ` 7` accepted; `abc` threw a retryable error, retried for ever);
//    a negative or fractional limit reached PostgreSQL.
//  * Leak counts and timing: how many rows are still under an old key, their IDs, and how
//    long decrypting them takes.
//
// What it checks now:
//  * Its input, strictly: `table` one of REENCRYPT_TABLES, `afterId` a decimal row ID
//    (0 … 2^63-1, no sign, space or leading zero), `limit` an integer 1 … REENCRYPT_MAX_PAGE,
//    no other field. Anything else fails at once (non-retryable `bad_input`), before a row
//    is read.
//  * Its authority, where the data is and outside the namespace: the newest `keys_rotated`
//    entry of the audit trail, which only the database owner role can write (migration 0005;
//    `keys rotate` appends it right after changing the key file), together with the key file
//    itself, which only the key holder writes. Neither is in a namespace user's or the
//    application role's reach. It re-encrypts only towards the key that entry names, and only
//    in a worker whose key file has that very key active: with none recorded it refuses
//    (`no_recorded_rotation`), a worker whose file lacks the key yet retries
//    (`key_file_behind`), one with another key active refuses (`key_not_recorded`).
//    Nothing is read before these checks pass.
//  * A row it cannot decrypt (corrupted, under a key the file no longer holds, another row's
//    ciphertext) is left as it is and audited as `reencrypt_skipped` with its IDs and a reason
//    code, through the worker's own database role; the page moves on instead of retrying for ever.
//  * It returns counts and a cursor, nothing else.
// What is left, by design: once a rotation is recorded, anyone in the namespace can run
// pages towards it sooner or more often than the workflow would. That is the work the key
// holder ordered (idempotent, at most REENCRYPT_MAX_PAGE rows a call), and the counts and
// row IDs it returns are what the application's database role can read anyway.
import { ApplicationFailure } from '@temporalio/common';
import { Context, log } from '@temporalio/activity';
import { z } from 'zod';
import { isPermanentDbError, sqlState, type Db } from '../lib/platform/db';
import { refreshKeyring, type Keyring } from '../lib/pii/keyring';
import { REENCRYPT_MAX_PAGE, recordedRotation, resealRowsAfter, type ReencryptPage } from '../lib/pii/reencrypt';
import { REENCRYPT_TABLES } from '../lib/contract/reencrypt';

const MAX_ROW_ID = 2n ** 63n - 1n;

/** The page input; nothing but these three fields. */
const pageInput = z.strictObject({
  table: z.enum(REENCRYPT_TABLES, { message: `must be one of ${REENCRYPT_TABLES.join(', ')}` }),
  afterId: z
    .string({ message: 'must be a string' })
    .regex(/^(0|[1-9][0-9]{0,18})$/, { message: 'must be a row ID in decimal digits (0 to start)', abort: true })
    .refine((s) => BigInt(s) <= MAX_ROW_ID, { message: 'must be at most 2^63-1' }),
  limit: z
    .number({ message: 'must be a number' })
    .int({ message: 'must be a whole number' })
    .min(1, { message: 'must be at least 1' })
    .max(REENCRYPT_MAX_PAGE, {
      message: `must be at most ${REENCRYPT_MAX_PAGE}`,
    }),
});
export type ReencryptPageInput = z.infer<typeof pageInput>;

export function createKeyActivities({ db, keyring }: { db: Db; keyring: Keyring }) {
  /** The key the newest recorded rotation names, once this worker's key file has it active; else refuses. */
  async function recordedTarget(): Promise<string> {
    let rotation;
    try {
      rotation = await recordedRotation(db);
    } catch (err) {
      if (!isPermanentDbError(err)) throw err;
      throw ApplicationFailure.nonRetryable(
        `reencryptPage: the database refused to read the rotation record (SQLSTATE ${sqlState(err)}): run npm run db:migrate as the owner role (migration 0005).`,
        'PermanentDbError',
      );
    }
    if (!rotation) {
      throw ApplicationFailure.nonRetryable(
        'reencryptPage refused: no key rotation is recorded in the audit trail (since migration 0005). Re-encryption moves data only towards a key ' +
          'that `keys rotate` recorded (run with the key file and DATABASE_OWNER_URL set to the owner role). Nothing was read.',
        'no_recorded_rotation',
      );
    }
    if (keyring.activeKeyId !== rotation.newKeyId) await refreshKeyring(keyring, { force: true });
    if (!keyring.keys.has(rotation.newKeyId)) {
      throw ApplicationFailure.retryable(
        `reencryptPage: the recorded rotation (audit entry ${rotation.entryId}) is to key ${rotation.newKeyId}, which this worker's key file does not hold yet; retrying until it does. Nothing was read.`,
        'key_file_behind',
      );
    }
    if (keyring.activeKeyId !== rotation.newKeyId) {
      throw ApplicationFailure.nonRetryable(
        `reencryptPage refused: this worker's active key is ${keyring.activeKeyId}, but the newest recorded rotation (audit entry ${rotation.entryId}) is to ${rotation.newKeyId}: ` +
          "data moves only to a recorded key. Run `keys rotate` (it records itself) or fix this worker's key file. Nothing was read.",
        'key_not_recorded',
      );
    }
    return rotation.newKeyId;
  }

  return {
    async reencryptPage(input: unknown): Promise<ReencryptPage> {
      const parsed = pageInput.safeParse(input);
      if (!parsed.success) {
        const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; ');
        throw ApplicationFailure.nonRetryable(`reencryptPage input refused (${problems}). Nothing was read.`, 'bad_input');
      }
      const { table, afterId, limit } = parsed.data;
      await refreshKeyring(keyring); // a rotation made since the worker started
      Context.current().heartbeat(afterId);
      const target = await recordedTarget();
      const page = await resealRowsAfter(db, keyring, target, table, afterId, limit);
      log.info('Re-encrypted page', { table, reencrypted: page.reencrypted, skipped: page.skipped, lastId: page.lastId });
      if (page.skipped)
        log.warn('Re-encryption skipped rows it cannot decrypt (left as they are; see reencrypt_skipped in the audit trail)', {
          table,
          skipped: page.skipped,
        });
      return { reencrypted: page.reencrypted, skipped: page.skipped, lastId: page.lastId };
    },
  };
}

export type KeyActivities = ReturnType<typeof createKeyActivities>;
