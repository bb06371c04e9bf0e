// The PII audit trail: an append-only, hash-chained log. Each entry's hash covers the
// previous entry's hash and the entry itself (ID, time, request, event, actor, details),
// so editing, deleting or reordering any entry but the newest breaks every hash after it.
// The database refuses UPDATE and DELETE on the table (migration 0002); this module only
// appends, under a lock so the chain never forks.
import crypto from 'node:crypto';
import type { Db } from './db';
import { canonicalJson } from './operators';

export const GENESIS_HASH = '0'.repeat(64);
const LOCK_ID = 7_233_002;

export type AuditEvent =
  | 'request_received'
  | 'request_refused'
  | 'authorised'
  | 'approval_received'
  | 'approval_refused'
  | 'approved'
  | 'denied'
  | 'expired'
  | 'record_read'
  | 'completed'
  | 'failed'
  | 'keys_rotated'
  | 'reencrypted';

export interface AuditEntry {
  requestId: string;
  event: AuditEvent;
  actor: string | null;
  /** IDs, codes and counts only: never a PII value. */
  details: Record<string, unknown>;
}

export interface StoredAuditEntry extends AuditEntry {
  id: string;
  at: string;
  prevHash: string;
  hash: string;
}

export function entryHash(prevHash: string, e: Omit<StoredAuditEntry, 'prevHash' | 'hash'>): string {
  const content = canonicalJson({ id: e.id, at: e.at, requestId: e.requestId, event: e.event, actor: e.actor, details: e.details });
  return crypto.createHash('sha256').update(prevHash).update('\n').update(content).digest('hex');
}

/** Appends entries in order, in one transaction; returns them as stored. */
export async function appendAudit(db: Db, entries: AuditEntry[]): Promise<StoredAuditEntry[]> {
  return db.$transaction(async (tx) => {
    await tx.$queryRaw`SELECT pg_advisory_xact_lock(${LOCK_ID})::text AS locked`;
    const [last] = await tx.$queryRaw<{ hash: string }[]>`SELECT hash FROM pii_audit_log ORDER BY id DESC LIMIT 1`;
    let prevHash = last?.hash ?? GENESIS_HASH;
    const stored: StoredAuditEntry[] = [];
    for (const entry of entries) {
      const [{ id }] = await tx.$queryRaw<{ id: bigint }[]>`SELECT nextval('pii_audit_log_id_seq') AS id`;
      const e = { ...entry, id: id.toString(), at: new Date().toISOString() };
      const hash = entryHash(prevHash, e);
      await tx.$executeRaw`
        INSERT INTO pii_audit_log (id, at, request_id, event, actor, details, prev_hash, hash)
        VALUES (${id}, ${e.at}::timestamptz, ${e.requestId}, ${e.event}, ${e.actor}, ${JSON.stringify(e.details)}::jsonb, ${prevHash}, ${hash})`;
      stored.push({ ...e, prevHash, hash });
      prevHash = hash;
    }
    return stored;
  });
}

interface AuditRow {
  id: bigint;
  at: Date;
  request_id: string;
  event: AuditEvent;
  actor: string | null;
  details: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

const fromRow = (r: AuditRow): StoredAuditEntry => ({
  id: r.id.toString(),
  at: r.at.toISOString(),
  requestId: r.request_id,
  event: r.event,
  actor: r.actor,
  details: r.details,
  prevHash: r.prev_hash,
  hash: r.hash,
});

export type VerifyChainResult =
  | { ok: true; entries: number; head: string }
  | { ok: false; entries: number; brokenAt: string; problem: string };

/** Walks the whole chain in ID order; names the first entry that does not fit. */
export async function verifyAuditChain(db: Db, pageSize = 1000): Promise<VerifyChainResult> {
  let prevHash = GENESIS_HASH;
  let prevId: string | null = null;
  let checked = 0;
  let after = -1n;
  for (;;) {
    const rows = await db.$queryRaw<AuditRow[]>`
      SELECT id, at, request_id, event, actor, details, prev_hash, hash FROM pii_audit_log WHERE id > ${after} ORDER BY id LIMIT ${pageSize}`;
    for (const e of rows.map(fromRow)) {
      if (e.prevHash !== prevHash) {
        const where = prevId === null ? 'the start of the chain' : `entry ${prevId}`;
        return { ok: false, entries: checked, brokenAt: e.id, problem: `entry ${e.id} does not follow ${where} (an entry before it was deleted, inserted or reordered)` };
      }
      if (entryHash(e.prevHash, e) !== e.hash) {
        return { ok: false, entries: checked, brokenAt: e.id, problem: `entry ${e.id} does not match its hash (its content was changed)` };
      }
      prevHash = e.hash;
      prevId = e.id;
      checked++;
    }
    if (rows.length < pageSize) return { ok: true, entries: checked, head: prevHash };
    after = rows[rows.length - 1].id;
  }
}

export async function auditEntriesFor(db: Db, requestId: string): Promise<StoredAuditEntry[]> {
  const rows = await db.$queryRaw<AuditRow[]>`
    SELECT id, at, request_id, event, actor, details, prev_hash, hash FROM pii_audit_log WHERE request_id = ${requestId} ORDER BY id`;
  return rows.map(fromRow);
}
