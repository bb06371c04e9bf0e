// Finding and decrypting the records a recovery request names. Used only by the recovery
// activities, after the request was verified, authorised and approved, and after the
// audit entries for these records were committed.
import crypto from 'node:crypto';
import type { Db } from '../platform/db';
import type { Keyring } from '../pii/keyring';
import { openPii } from '../pipeline/mask';
import { canonicalJson } from './canonical-json';
import type { RecoveryRequestBody } from './documents';

export type Selector = RecoveryRequestBody['selector'];
export type Field = RecoveryRequestBody['fields'][number];

export interface RecordRef {
  table: 'user_logins' | 'quarantine';
  messageId: string;
}

export interface RecoveredRecord extends RecordRef {
  ip?: string;
  device_id?: string;
  /** Quarantined messages, when `body` is asked for: the raw body as received (first 8 KiB). */
  body?: string;
}

/** What an approver approves: the records frozen at authorisation, and what of them is read. */
export interface RecordSet {
  requestId: string;
  selector: Selector;
  fields: Field[];
  records: RecordRef[];
}

/**
 * The hash an approval signs (ApprovalBody.recordSetHash): SHA-256 over the canonical JSON
 * of the request ID, the selector, the fields and every record's table and message ID, in
 * order. Computed alike by the worker (at authorisation and again before decrypting) and
 * by the approver's CLI from what it is shown.
 */
export function recordSetHash(set: RecordSet): string {
  const content = canonicalJson({
    type: 'pii-record-set',
    requestId: set.requestId,
    selector: set.selector,
    fields: set.fields,
    records: set.records.map((r) => [r.table, r.messageId]),
  });
  return crypto.createHash('sha256').update(content, 'utf8').digest('hex');
}

/** The records a selector names, at most `limit` (ask for one more than allowed to detect "too many"). */
export async function findRecords(db: Db, selector: Selector, limit: number): Promise<RecordRef[]> {
  let rows: RecordRef[];
  if ('messageIds' in selector) {
    rows = await db.$queryRaw<RecordRef[]>`
      SELECT 'user_logins' AS "table", message_id AS "messageId" FROM user_logins WHERE message_id = ANY(${selector.messageIds}::text[])
      UNION ALL
      SELECT 'quarantine', message_id FROM quarantine WHERE message_id = ANY(${selector.messageIds}::text[])
      ORDER BY 2 LIMIT ${limit}`;
  } else if ('userId' in selector) {
    rows = await db.$queryRaw<RecordRef[]>`
      SELECT 'user_logins' AS "table", message_id AS "messageId" FROM user_logins WHERE user_id = ${selector.userId}
      ORDER BY id LIMIT ${limit}`;
  } else {
    rows = await db.$queryRaw<RecordRef[]>`
      SELECT 'user_logins' AS "table", message_id AS "messageId" FROM user_logins
      WHERE masked_ip = ${selector.fingerprint} OR masked_device_id = ${selector.fingerprint}
      ORDER BY id LIMIT ${limit}`;
  }
  return rows;
}

/** Decrypts the requested fields of the given records. Values live only in the returned objects. */
export async function decryptRecords(
  db: Db,
  keyring: Keyring,
  records: RecordRef[],
  fields: Field[],
): Promise<RecoveredRecord[]> {
  const ids = (table: RecordRef['table']) => records.filter((r) => r.table === table).map((r) => r.messageId);
  const out: RecoveredRecord[] = [];
  const logins = await db.$queryRaw<
    { message_id: string; ip_ciphertext: Buffer; device_id_ciphertext: Buffer; pii_key_id: string }[]
  >`
    SELECT message_id, ip_ciphertext, device_id_ciphertext, pii_key_id FROM user_logins WHERE message_id = ANY(${ids('user_logins')}::text[])`;
  for (const r of logins) {
    const rec: RecoveredRecord = { table: 'user_logins', messageId: r.message_id };
    if (fields.includes('ip')) rec.ip = openPii(keyring, r.pii_key_id, r.ip_ciphertext, r.message_id, 'ip').toString('utf8');
    if (fields.includes('device_id'))
      rec.device_id = openPii(keyring, r.pii_key_id, r.device_id_ciphertext, r.message_id, 'device_id').toString('utf8');
    out.push(rec);
  }
  if (!fields.includes('body')) return out;
  const quarantined = await db.$queryRaw<{ message_id: string; body_ciphertext: Buffer; pii_key_id: string }[]>`
    SELECT message_id, body_ciphertext, pii_key_id FROM quarantine WHERE message_id = ANY(${ids('quarantine')}::text[])`;
  for (const r of quarantined) {
    out.push({
      table: 'quarantine',
      messageId: r.message_id,
      body: openPii(keyring, r.pii_key_id, r.body_ciphertext, r.message_id, 'body').toString('utf8'),
    });
  }
  return out;
}

/**
 * The records of a frozen set that the selector does not name (or that no longer exist):
 * checked again at decryption, so a record set can only ever hold what the signed request
 * selects. Reads only IDs, owners and masks (the operators' role may run it too).
 */
export async function recordsOutsideSelector(db: Db, selector: Selector, records: RecordRef[]): Promise<RecordRef[]> {
  const ids = (table: RecordRef['table']) => records.filter((r) => r.table === table).map((r) => r.messageId);
  let matching: { table: RecordRef['table']; messageId: string }[];
  if ('messageIds' in selector) {
    matching = await db.$queryRaw<RecordRef[]>`
      SELECT 'user_logins' AS "table", message_id AS "messageId" FROM user_logins
       WHERE message_id = ANY(${ids('user_logins')}::text[]) AND message_id = ANY(${selector.messageIds}::text[])
      UNION ALL
      SELECT 'quarantine', message_id FROM quarantine
       WHERE message_id = ANY(${ids('quarantine')}::text[]) AND message_id = ANY(${selector.messageIds}::text[])`;
  } else if ('userId' in selector) {
    matching = await db.$queryRaw<RecordRef[]>`
      SELECT 'user_logins' AS "table", message_id AS "messageId" FROM user_logins
       WHERE message_id = ANY(${ids('user_logins')}::text[]) AND user_id = ${selector.userId}`;
  } else {
    matching = await db.$queryRaw<RecordRef[]>`
      SELECT 'user_logins' AS "table", message_id AS "messageId" FROM user_logins
       WHERE message_id = ANY(${ids('user_logins')}::text[])
         AND (masked_ip = ${selector.fingerprint} OR masked_device_id = ${selector.fingerprint})`;
  }
  const found = new Set(matching.map((r) => `${r.table}:${r.messageId}`));
  return records.filter((r) => !found.has(`${r.table}:${r.messageId}`));
}

/** Whose each record is: the user ID of every row (quarantine entries have none), for an approver to see. */
export async function recordOwners(db: Db, records: RecordRef[]): Promise<Map<string, string>> {
  const ids = records.filter((r) => r.table === 'user_logins').map((r) => r.messageId);
  const rows = await db.$queryRaw<{ message_id: string; user_id: string }[]>`
    SELECT message_id, user_id FROM user_logins WHERE message_id = ANY(${ids}::text[])`;
  return new Map(rows.map((r) => [r.message_id, r.user_id]));
}
