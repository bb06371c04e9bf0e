// A recovery request's grant: consumed once, in the same transaction that writes the
// `record_read` entries and under the chain's lock, before a single value is decrypted.
// Used by the decrypting activity (activities/recovery-read.ts), which has read and
// verified the request, its record set and its decision from the trail (trail.ts).
import type { Db } from '../platform/db';
import { appendAudit, auditEntriesFor, type AuditEntry, type StoredAuditEntry } from './audit';
import type { Field, RecordRef } from './records';

export interface Grant {
  requestId: string;
  requester: string;
  recordSetHash: string;
  records: RecordRef[];
  fields: Field[];
  /** More for the `grant_consumed` entry: the approval and its signature, the run. */
  details: Record<string, unknown>;
  /**
   * Checked under the chain's lock, on the request's entries as they are then: what ended
   * the request meanwhile (a denial, an expiry), or null when the grant may still be used.
   */
  stillValid: (entries: StoredAuditEntry[]) => 'denied' | 'expired' | null;
}

/**
 * Consumes the grant and writes `grant_consumed` and one `record_read` per record, in one
 * transaction under the chain's lock. `spent` (and nothing written) when the request's
 * grant was consumed before; `denied` or `expired` when stillValid says so.
 */
export async function consumeGrant(db: Db, g: Grant): Promise<'consumed' | 'spent' | 'denied' | 'expired'> {
  return db.$transaction(async (tx) => {
    await tx.$queryRaw`SELECT pg_advisory_xact_lock(7233002)::text AS locked`; // the chain's lock: one consumer at a time
    const entries = await auditEntriesFor(tx, g.requestId);
    if (entries.some((e) => e.event === 'grant_consumed' || e.event === 'record_read')) return 'spent';
    const ended = g.stillValid(entries);
    if (ended) return ended;
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
    return 'consumed';
  });
}
