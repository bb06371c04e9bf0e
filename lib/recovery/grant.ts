// A recovery request's grant, as the audit trail holds it: finding the authorisation whose
// frozen record set is the one claimed (and, with an approval, the one the approver
// signed), and consuming the grant, once, in the same transaction that writes the
// `record_read` entries, before a single value is decrypted. Used by the decrypting
// activity (activities/recovery.ts recoverRecords), which has verified the request itself.
import type { Db } from '../platform/db';
import { appendAudit, type AuditEntry, type StoredAuditEntry } from './audit';
import type { RecoveryRequestBody } from './documents';
import { recordSetHash, type Field, type RecordRef, type RecordSet } from './records';

/** The `authorised` entry whose frozen set hashes to what it claims (and to `hash`, when given). */
export function authorisationOf(
  entries: StoredAuditEntry[],
  request: Pick<RecoveryRequestBody, 'requestId' | 'selector' | 'fields'>,
  hash?: string,
): StoredAuditEntry | undefined {
  return entries.find((e) => {
    if (e.event !== 'authorised' || typeof e.details.recordSetHash !== 'string' || !Array.isArray(e.details.records))
      return false;
    const set: RecordSet = {
      requestId: request.requestId,
      selector: request.selector,
      fields: request.fields,
      records: e.details.records as RecordRef[],
    };
    return recordSetHash(set) === e.details.recordSetHash && (hash === undefined || hash === e.details.recordSetHash);
  });
}

export interface Grant {
  requestId: string;
  requester: string;
  recordSetHash: string;
  records: RecordRef[];
  fields: Field[];
  /** More for the `grant_consumed` entry: the approval and its signature, the run. */
  details: Record<string, unknown>;
}

/**
 * Consumes the grant and writes `grant_consumed` and one `record_read` per record, in one
 * transaction under the chain's lock; false (and nothing written) when the request's grant
 * was consumed before.
 */
export async function consumeGrant(db: Db, g: Grant): Promise<boolean> {
  return db.$transaction(async (tx) => {
    await tx.$queryRaw`SELECT pg_advisory_xact_lock(7233002)::text AS locked`; // the chain's lock: one consumer at a time
    const [{ n }] = await tx.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pii_audit_log WHERE request_id = ${g.requestId} AND event IN ('grant_consumed', 'record_read')`;
    if (n > 0) return false;
    await appendAudit(tx, [
      {
        requestId: g.requestId,
        event: 'grant_consumed',
        actor: g.requester,
        details: { recordSetHash: g.recordSetHash, records: g.records.length, ...g.details },
      },
      ...g.records.map<AuditEntry>((r) => ({
        requestId: g.requestId,
        event: 'record_read',
        actor: g.requester,
        details: { table: r.table, messageId: r.messageId, fields: g.fields },
      })),
    ]);
    return true;
  });
}
