// Re-encryption after a key rotation: moves the ciphertext of rows and quarantine bodies
// written under other keys to the key of the recorded rotation, a page at a time. Each
// update only applies when the row still carries the key it was read with, so a page can
// be retried, run twice or run beside the ingest without harm. Also the rotation record:
// `keys rotate` appends it to the audit trail as the owner role (migration 0005), and the
// re-encryption activity reads it back as its authority (activities/keys.ts).
import crypto from 'node:crypto';
import { appendAudit, type AuditEntry } from '../recovery/audit';
import type { Db } from '../platform/db';
import type { Keyring } from './keyring';
import { isBlob } from './blob';
import type { Sealed } from './crypto';
import { openPii, sealPii, type PiiField } from '../pipeline/mask';
import { REENCRYPT_TABLES, type ReencryptTable } from '../contract/reencrypt';

/** Most rows one page reads (the workflow's default page is 500). */
export const REENCRYPT_MAX_PAGE = 1000;

/** The newest key rotation the owner role recorded: the only key re-encryption moves data to. */
export interface RecordedRotation {
  /** The audit entry's ID. */
  entryId: string;
  newKeyId: string;
}

/**
 * The newest `keys_rotated` entry written since migration 0005 (from then on only a role
 * that can act as the trail's owner can write one), or null when there is none.
 */
export async function recordedRotation(db: Db): Promise<RecordedRotation | null> {
  const [row] = await db.$queryRaw<{ id: bigint; new_key_id: string | null }[]>`
    SELECT id, details->>'newKeyId' AS new_key_id FROM pii_audit_log
    WHERE event = 'keys_rotated' AND id > pii_key_rotations_trusted_after()
    ORDER BY id DESC LIMIT 1`;
  return row?.new_key_id ? { entryId: row.id.toString(), newKeyId: row.new_key_id } : null;
}

/**
 * Before `keys rotate` touches the key file: the connection (DATABASE_OWNER_URL) must be
 * able to act as the trail's owner, or its record would be refused after the rotation.
 */
export async function checkCanRecordRotation(ownerDb: Db): Promise<void> {
  const [row] = await ownerDb.$queryRaw<{ role: string; owner: boolean | null; migrated: boolean }[]>`
    SELECT session_user::text AS role,
           (SELECT pg_has_role(session_user, tableowner, 'USAGE') FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'pii_audit_log') AS owner,
           to_regproc('pii_key_rotations_trusted_after') IS NOT NULL AS migrated`;
  if (!row.migrated)
    throw new Error(
      'The database lacks migration 0005 (key rotation records): run `npm run db:migrate` as the owner role (DATABASE_OWNER_URL) first.',
    );
  if (!row.owner) {
    throw new Error(
      `keys rotate records the rotation in the audit trail as the database owner role, and DATABASE_OWNER_URL connects as ${row.role}, which cannot act as the owner of pii_audit_log: ` +
        'set DATABASE_OWNER_URL to the owner role (the one that runs the migrations). Nothing was rotated.',
    );
  }
}

/** Appends the owner's record of a rotation: from then on re-encryption moves data to newKeyId. */
export async function recordRotation(ownerDb: Db, rotation: { newKeyId: string; previousKeyId: string }): Promise<void> {
  await appendAudit(ownerDb, [{ requestId: crypto.randomUUID(), event: 'keys_rotated', actor: null, details: { ...rotation } }]);
}

export interface ReencryptPage {
  /** Rows moved to the active key. */
  reencrypted: number;
  /** Rows that cannot be decrypted, left as they are (each audited as `reencrypt_skipped`). */
  skipped: number;
  /** The last row ID looked at; null when the table has no more rows under an old key. */
  lastId: string | null;
}

/** Why a stored value cannot be decrypted: its key is not in the keyring, it is no sealed value, or it fails authentication (altered bytes, or another row's or field's value). */
export type UndecryptableReason = 'unknown_key' | 'not_a_blob' | 'auth_failed';

/** A stored value decrypted, or why it cannot be. */
export function openOrReason(
  keyring: Keyring,
  keyId: string,
  blob: Uint8Array,
  messageId: string,
  field: PiiField,
): { plain: Buffer } | { reason: UndecryptableReason } {
  try {
    return { plain: openPii(keyring, keyId, blob, messageId, field) };
  } catch {
    if (!keyring.keys.has(keyId)) return { reason: 'unknown_key' };
    return { reason: isBlob(Buffer.from(blob)) ? 'auth_failed' : 'not_a_blob' };
  }
}

/**
 * One page of `table` after row `afterId`: rows under any key but `targetKeyId` (a key of
 * `keyring`) move to it. A row that cannot be decrypted stays as it is, and is audited
 * (`reencrypt_skipped`: table, message ID, key ID, field, reason; never a value) through
 * `db`, so that one bad row does not hold up the rest for ever.
 */
export async function resealRowsAfter(
  db: Db,
  keyring: Keyring,
  targetKeyId: string,
  table: ReencryptTable,
  afterId: string,
  limit: number,
): Promise<ReencryptPage> {
  const active = targetKeyId;
  const towards: Keyring = { ...keyring, activeKeyId: targetKeyId }; // not whatever the key file says a moment later
  const skipped: AuditEntry[] = [];
  /** The row's fields sealed under the target key, or null (and an audit entry) when one cannot be decrypted. */
  const reseal = (r: { message_id: string; pii_key_id: string }, fields: [PiiField, Uint8Array][]) => {
    const sealed: Sealed[] = [];
    for (const [field, blob] of fields) {
      const opened = openOrReason(keyring, r.pii_key_id, blob, r.message_id, field);
      if ('reason' in opened) {
        skipped.push({
          requestId: crypto.randomUUID(),
          event: 'reencrypt_skipped',
          actor: null,
          details: { table, messageId: r.message_id, keyId: r.pii_key_id, field, reason: opened.reason },
        });
        return null;
      }
      sealed.push(sealPii(towards, opened.plain, r.message_id, field));
    }
    return sealed;
  };
  let reencrypted = 0;
  let lastId: string | null;
  if (table === 'user_logins') {
    const rows = await db.$queryRaw<
      { id: bigint; message_id: string; ip_ciphertext: Buffer; device_id_ciphertext: Buffer; pii_key_id: string }[]
    >`
      SELECT id, message_id, ip_ciphertext, device_id_ciphertext, pii_key_id FROM user_logins
      WHERE id > ${BigInt(afterId)} AND pii_key_id <> ${active} ORDER BY id LIMIT ${limit}`;
    for (const r of rows) {
      const sealed = reseal(r, [
        ['ip', r.ip_ciphertext],
        ['device_id', r.device_id_ciphertext],
      ]);
      if (!sealed) continue;
      const [ip, device] = sealed;
      reencrypted += await db.$executeRaw`
        UPDATE user_logins SET ip_ciphertext = ${ip.blob}, device_id_ciphertext = ${device.blob}, pii_key_id = ${ip.keyId}
        WHERE id = ${r.id} AND pii_key_id = ${r.pii_key_id}`;
    }
    lastId = rows.length ? rows[rows.length - 1].id.toString() : null;
  } else if (table === 'quarantine') {
    const rows = await db.$queryRaw<{ id: bigint; message_id: string; body_ciphertext: Buffer; pii_key_id: string }[]>`
      SELECT id, message_id, body_ciphertext, pii_key_id FROM quarantine
      WHERE id > ${BigInt(afterId)} AND pii_key_id <> ${active} ORDER BY id LIMIT ${limit}`;
    for (const r of rows) {
      const sealed = reseal(r, [['body', r.body_ciphertext]]);
      if (!sealed) continue;
      reencrypted += await db.$executeRaw`
        UPDATE quarantine SET body_ciphertext = ${sealed[0].blob}, pii_key_id = ${sealed[0].keyId} WHERE id = ${r.id} AND pii_key_id = ${r.pii_key_id}`;
    }
    lastId = rows.length ? rows[rows.length - 1].id.toString() : null;
  } else {
    throw new Error(`reencryptPage: no table ${JSON.stringify(table)} holds PII to re-encrypt (${REENCRYPT_TABLES.join(', ')})`);
  }
  if (skipped.length) await appendAudit(db, skipped);
  return { reencrypted, skipped: skipped.length, lastId };
}

/** How many rows of each table are still under a key other than the active one. */
export async function keyUsage(db: Db): Promise<{ table: ReencryptTable; keyId: string; rows: number }[]> {
  return db.$queryRaw`
    SELECT 'user_logins' AS "table", pii_key_id AS "keyId", count(*)::int AS rows FROM user_logins GROUP BY pii_key_id
    UNION ALL
    SELECT 'quarantine', pii_key_id, count(*)::int FROM quarantine GROUP BY pii_key_id
    ORDER BY 1, 2`;
}
