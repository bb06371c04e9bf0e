// The persist stage's database work. `insertChunk` writes one transformed chunk in one
// statement, so in one transaction: the message IDs are claimed in the `ingested_messages`
// ledger, and only the newly claimed ones are written to `user_logins` or `quarantine`. A
// redelivered message (its ID already claimed) writes nothing, however often it comes
// back. Arrays go in through unnest(), one round trip per chunk.
import { sqltag as sql, type Sql } from '@prisma/client/runtime/client';
import { isPermanentDbError, sqlState, type Db, type RawSql } from '../platform/db';
import type { Keyring } from '../pii/keyring';
import { quarantineEntry } from '../pipeline/transform';
import {
  addPersistResults,
  type LoginRow,
  type PersistResult,
  type QuarantineEntry,
  type TransformedBatch,
} from '../contract/types';

interface Counts {
  persisted: number;
  quarantined: number;
  claimed: number;
  duplicate_logins: number;
  /** JSON text: the driver adapter alone does not parse JSON columns (lib/platform/db.ts). */
  by_reason: string;
}

/** Claims the chunk's message IDs and inserts the newly claimed ones, in one INSERT … unnest statement. `drainAttempt` is recorded with each claim (lib/ingest/drain.ts: the retry after a dead worker counts from it). */
export async function insertChunk(
  db: RawSql,
  batch: TransformedBatch,
  drainAttempt: string | null = null,
): Promise<PersistResult> {
  const total = batch.rows.length + batch.quarantine.length;
  if (total === 0) return { persisted: 0, quarantined: 0, quarantinedByReason: {}, alreadySeen: 0, duplicateLogins: 0 };
  const [counts] = await db.rows<Counts>(chunkStatement(batch, drainAttempt));
  return {
    persisted: counts.persisted,
    quarantined: counts.quarantined,
    quarantinedByReason: JSON.parse(counts.by_reason) as Record<string, number>,
    alreadySeen: total - counts.claimed,
    duplicateLogins: counts.duplicate_logins,
  };
}

/** insertChunk's statement: the chunk as one array per column, unnested into the ledger and the tables. */
export function chunkStatement({ rows, quarantine: q }: TransformedBatch, drainAttempt: string | null): Sql {
  const col = <T>(pick: (r: (typeof rows)[number]) => T) => rows.map(pick);
  const qcol = <T>(pick: (e: (typeof q)[number]) => T) => q.map(pick);
  return sql`
    WITH input_rows AS (
      SELECT * FROM unnest(
        ${col((r) => r.messageId)}::text[], ${col((r) => r.userId)}::text[], ${col((r) => r.deviceType)}::text[],
        ${col((r) => r.maskedIp)}::text[], ${col((r) => r.maskedDeviceId)}::text[],
        ${col((r) => r.ipCiphertext)}::text[], ${col((r) => r.deviceIdCiphertext)}::text[], ${col((r) => r.piiKeyId)}::text[],
        ${col((r) => r.locale)}::text[], ${col((r) => r.appVersion)}::text[],
        ${col((r) => r.appVersionMajor)}::int[], ${col((r) => r.appVersionMinor)}::int[], ${col((r) => r.appVersionPatch)}::int[],
        ${col((r) => r.loginFingerprint)}::text[], ${col((r) => r.createDate)}::text[]
      ) AS t(message_id, user_id, device_type, masked_ip, masked_device_id, ip_ciphertext, device_id_ciphertext,
             pii_key_id, locale, app_version, major, minor, patch, login_fingerprint, create_date)
    ),
    input_quarantine AS (
      SELECT * FROM unnest(
        ${qcol((e) => e.messageId)}::text[], ${qcol((e) => e.reasons.join(','))}::text[],
        ${qcol((e) => e.bodyCiphertext)}::text[], ${qcol((e) => e.piiKeyId)}::text[],
        ${qcol((e) => e.bodyBytes)}::int[], ${qcol((e) => e.bodyTruncated)}::boolean[], ${qcol((e) => e.sentAt)}::text[]
      ) AS t(message_id, reasons, body_ciphertext, pii_key_id, body_bytes, body_truncated, sent_at)
    ),
    claimed AS (
      INSERT INTO ingested_messages (message_id, outcome, drain_attempt)
      SELECT message_id, 'row', ${drainAttempt}::text FROM input_rows
      UNION ALL
      SELECT message_id, 'quarantine', ${drainAttempt}::text FROM input_quarantine
      ON CONFLICT (message_id) DO NOTHING
      RETURNING message_id
    ),
    inserted_rows AS (
      INSERT INTO user_logins (message_id, user_id, device_type, masked_ip, masked_device_id, ip_ciphertext,
        device_id_ciphertext, pii_key_id, locale, app_version, app_version_major, app_version_minor,
        app_version_patch, login_fingerprint, create_date)
      SELECT r.message_id, r.user_id, r.device_type, r.masked_ip, r.masked_device_id, decode(r.ip_ciphertext, 'base64'),
        decode(r.device_id_ciphertext, 'base64'), r.pii_key_id, r.locale, r.app_version, r.major, r.minor,
        r.patch, r.login_fingerprint, r.create_date::timestamptz
      FROM input_rows r JOIN claimed USING (message_id)
      RETURNING login_fingerprint
    ),
    inserted_quarantine AS (
      INSERT INTO quarantine (message_id, reasons, body_ciphertext, pii_key_id, body_bytes, body_truncated, sent_at)
      SELECT q.message_id, string_to_array(q.reasons, ','), decode(q.body_ciphertext, 'base64'), q.pii_key_id,
        q.body_bytes, q.body_truncated, q.sent_at::timestamptz
      FROM input_quarantine q JOIN claimed USING (message_id)
      RETURNING reasons
    ),
    -- The statement's snapshot does not see its own inserts: "existed" means an earlier row.
    fingerprints AS (
      SELECT i.login_fingerprint,
             EXISTS (SELECT 1 FROM user_logins u WHERE u.login_fingerprint = i.login_fingerprint) AS existed
      FROM inserted_rows i
    )
    SELECT
      (SELECT count(*) FROM inserted_rows)::int AS persisted,
      (SELECT count(*) FROM inserted_quarantine)::int AS quarantined,
      (SELECT count(*) FROM claimed)::int AS claimed,
      (SELECT count(*) - count(DISTINCT login_fingerprint) FILTER (WHERE NOT existed) FROM fingerprints)::int AS duplicate_logins,
      (SELECT coalesce(jsonb_object_agg(reason, n), '{}'::jsonb)
         FROM (SELECT reason, count(*)::int AS n FROM inserted_quarantine, unnest(reasons) AS reason GROUP BY reason) s
      )::text AS by_reason`;
}

/**
 * A row the database refused although it passed validation, as a quarantine entry: the
 * row as transformed (IP and device ID still encrypted inside) becomes the sealed body.
 */
function rejectedRow(keyring: Keyring, row: LoginRow, state: string): QuarantineEntry {
  const body = JSON.stringify(row);
  const asMessage = {
    messageId: row.messageId,
    receiptHandle: '',
    body,
    bodyBytes: Buffer.byteLength(body),
    bodyTruncated: false,
    sentTimestamp: null,
    receiveCount: null,
  };
  return quarantineEntry(keyring, asMessage, [`db_rejected:${state}`]);
}

/**
 * insertChunk, except that one row the database refuses (a value validation let through)
 * cannot fail the batch: on a permanent database error the batch is halved until the
 * refused row stands alone, and that row is quarantined as `db_rejected:<SQLSTATE>`. Costs
 * nothing while the database accepts everything. A refused quarantine entry still throws.
 */
export async function insertChunkIsolatingRejects(
  db: RawSql,
  keyring: Keyring,
  batch: TransformedBatch,
  drainAttempt: string | null = null,
): Promise<PersistResult> {
  try {
    return await insertChunk(db, batch, drainAttempt);
  } catch (err) {
    if (!isPermanentDbError(err)) throw err;
    const { rows, quarantine } = batch;
    if (rows.length + quarantine.length <= 1) {
      if (rows.length === 1)
        return insertChunk(
          db,
          { rows: [], quarantine: [rejectedRow(keyring, rows[0], sqlState(err) ?? 'unknown')] },
          drainAttempt,
        );
      throw err;
    }
    // Halve the batch as one list (rows first), so each half is strictly smaller.
    const cut = Math.ceil((rows.length + quarantine.length) / 2);
    const first = { rows: rows.slice(0, cut), quarantine: quarantine.slice(0, Math.max(0, cut - rows.length)) };
    const second = { rows: rows.slice(cut), quarantine: quarantine.slice(Math.max(0, cut - rows.length)) };
    const a = await insertChunkIsolatingRejects(db, keyring, first, drainAttempt);
    return addPersistResults(a, await insertChunkIsolatingRejects(db, keyring, second, drainAttempt));
  }
}

/** What the given drain attempts committed, as the ledger and the quarantine tell it. */
export async function committedBy(
  db: Db,
  drainAttempts: string[],
): Promise<Pick<PersistResult, 'persisted' | 'quarantined' | 'quarantinedByReason'>> {
  if (drainAttempts.length === 0) return { persisted: 0, quarantined: 0, quarantinedByReason: {} };
  const [counts] = await db.$queryRaw<{ persisted: number; quarantined: number; by_reason: Record<string, number> }[]>`
    WITH mine AS (SELECT message_id, outcome FROM ingested_messages WHERE drain_attempt = ANY(${drainAttempts}::text[]))
    SELECT
      (SELECT count(*) FROM mine WHERE outcome = 'row')::int AS persisted,
      (SELECT count(*) FROM mine WHERE outcome = 'quarantine')::int AS quarantined,
      (SELECT coalesce(jsonb_object_agg(reason, n), '{}'::jsonb) FROM (
         SELECT reason, count(*)::int AS n FROM quarantine q JOIN mine USING (message_id), unnest(q.reasons) AS reason GROUP BY reason
       ) s) AS by_reason`;
  return { persisted: counts.persisted, quarantined: counts.quarantined, quarantinedByReason: counts.by_reason };
}
