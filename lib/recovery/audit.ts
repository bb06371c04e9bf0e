// The PII audit trail: an append-only, hash-chained log. Each entry's hash covers the
// previous entry's hash and the entry itself (ID, time, request, event, actor, details)
// as PostgreSQL stores it, so editing, deleting or reordering any entry but the newest
// breaks the chain. The application never writes the table: it calls pii_audit_append
// (migration 0003), a SECURITY DEFINER function owned by the owner role, which takes the
// lock, assigns id, time, prev_hash and hash itself and inserts. The application's role
// can read the table and call that function, nothing else.
import crypto from 'node:crypto';
import type { Db } from '../platform/db';
import { storableText } from '../platform/guards';
import { OPERATOR_NAME } from './registry';

export const GENESIS_HASH = '0'.repeat(64);

export type AuditEvent =
  | 'request_received'
  | 'request_refused'
  | 'authorised'
  | 'approval_received'
  | 'approval_refused'
  | 'approved'
  | 'denied'
  | 'expired'
  | 'grant_consumed'
  | 'record_read'
  | 'completed'
  | 'failed'
  | 'keys_rotated'
  | 'reencrypted'
  /** An approver's signed approve or deny, appended by their CLI (the operators' role); judged by the recovery side. */
  | 'decision_signed'
  /** Re-encryption left a row it cannot decrypt as it was (written by the ingest worker's role). */
  | 'reencrypt_skipped';

export interface AuditEntry {
  /** A lower-case UUID; anything else is recorded as `unknown` (see auditRequestId). */
  requestId: string;
  event: AuditEvent;
  /** An operator name as in the registry, or null. */
  actor: string | null;
  /** IDs, codes, counts, signed documents: never a PII value. Made safe to store by safeDetails. */
  details: Record<string, unknown>;
}

export interface StoredAuditEntry extends AuditEntry {
  id: string;
  at: string;
  prevHash: string;
  hash: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The request ID as the trail records it: a lower-case UUID, or `unknown` for anything else. */
export function auditRequestId(value: unknown): string {
  return typeof value === 'string' && UUID.test(value) ? value : 'unknown';
}

/** An actor as the trail records it: an operator name, or null. */
export const auditActor = (value: unknown): string | null =>
  typeof value === 'string' && OPERATOR_NAME.test(value) ? value : null;

const MAX_STRING = 2000;
const MAX_KEYS = 64;
const MAX_ITEMS = 1000;
const MAX_DEPTH = 8;

/** A string PostgreSQL's jsonb stores as given: well-formed UTF-16 (lone surrogates → U+FFFD), no NUL, bounded. */
function safeString(s: string, max = MAX_STRING): string {
  const clean = storableText(s);
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

/**
 * Details made safe to store whatever they hold: strings well-formed and without NUL, keys
 * likewise (and bounded), numbers finite, depth and sizes bounded, anything that is not
 * JSON (functions, bigints, class instances) replaced by a marker. What the database then
 * stores is exactly this, and the hash covers what it stores.
 */
export function safeDetails(details: unknown): Record<string, unknown> {
  const visit = (v: unknown, depth: number): unknown => {
    if (v === null || typeof v === 'boolean') return v;
    if (typeof v === 'string') return safeString(v);
    if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
    if (depth >= MAX_DEPTH) return '[too deep]';
    if (Array.isArray(v)) return v.slice(0, MAX_ITEMS).map((x) => visit(x, depth + 1));
    if (typeof v === 'object' && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)) {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v as Record<string, unknown>).slice(0, MAX_KEYS)) {
        Object.defineProperty(out, safeString(k, 128), {
          value: visit(x, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    return `[${typeof v}]`;
  };
  const out = visit(details, 0);
  return out !== null && typeof out === 'object' && !Array.isArray(out) ? (out as Record<string, unknown>) : { value: out };
}

/** Anything that can run a query: the client or an interactive transaction. */
type Queryable = Pick<Db, '$queryRaw'>;

/**
 * Appends entries in order through pii_audit_append. Given a transaction, the entries
 * commit with it (and the chain lock is held until it ends); given the client, they commit
 * together in a transaction of their own. Returns them as stored.
 */
export async function appendAudit(db: Db | Queryable, entries: AuditEntry[]): Promise<StoredAuditEntry[]> {
  const run = async (tx: Queryable) => {
    const stored: StoredAuditEntry[] = [];
    for (const entry of entries) {
      const e = {
        requestId: auditRequestId(entry.requestId),
        event: entry.event,
        actor: auditActor(entry.actor),
        details: safeDetails(entry.details),
      };
      const [row] = await tx.$queryRaw<{ id: bigint; at: Date; prev_hash: string; hash: string }[]>`
        SELECT id, at, prev_hash, hash FROM pii_audit_append(${e.requestId}, ${e.event}, ${e.actor}, ${JSON.stringify(e.details)}::jsonb)`;
      stored.push({ ...e, id: row.id.toString(), at: row.at.toISOString(), prevHash: row.prev_hash, hash: row.hash });
    }
    return stored;
  };
  return '$transaction' in db ? db.$transaction((tx) => run(tx)) : run(db);
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

/** What an entry's hash covers (migration 0003, pii_audit_content), spelled out here so a replaced function cannot fool the check. */
export const entryHash = (prevHash: string, content: string): string =>
  crypto.createHash('sha256').update(`${prevHash}\n${content}`, 'utf8').digest('hex');

export interface AuditBreak {
  id: string;
  problem: string;
}

export type VerifyChainResult =
  | { ok: true; entries: number; head: string }
  | { ok: false; entries: number; head: string; brokenAt: string; problem: string; breaks: AuditBreak[] };

/** Walks the whole chain in ID order and reports every entry that does not fit, not only the first. */
export async function verifyAuditChain(db: Db, pageSize = 1000): Promise<VerifyChainResult> {
  let prevHash = GENESIS_HASH;
  let prevId: string | null = null;
  let checked = 0;
  let after = -1n;
  const breaks: AuditBreak[] = [];
  for (;;) {
    const rows = await db.$queryRaw<{ id: bigint; prev_hash: string; hash: string; content: string }[]>`
      SELECT id, prev_hash, hash,
             jsonb_build_array(id::text, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), request_id, event, actor, details)::text AS content
      FROM pii_audit_log WHERE id > ${after} ORDER BY id LIMIT ${pageSize}`;
    for (const r of rows) {
      const id = r.id.toString();
      if (r.prev_hash !== prevHash) {
        const where = prevId === null ? 'the start of the chain' : `entry ${prevId}`;
        breaks.push({
          id,
          problem: `entry ${id} does not follow ${where} (an entry before it was deleted, inserted or reordered)`,
        });
      }
      if (entryHash(r.prev_hash, r.content) !== r.hash)
        breaks.push({ id, problem: `entry ${id} does not match its hash (its content was changed)` });
      prevHash = r.hash;
      prevId = id;
      checked++;
    }
    if (rows.length < pageSize) break;
    after = rows[rows.length - 1].id;
  }
  if (!breaks.length) return { ok: true, entries: checked, head: prevHash };
  return { ok: false, entries: checked, head: prevHash, brokenAt: breaks[0].id, problem: breaks[0].problem, breaks };
}

export async function auditEntriesFor(db: Queryable, requestId: string): Promise<StoredAuditEntry[]> {
  const rows = await db.$queryRaw<AuditRow[]>`
    SELECT id, at, request_id, event, actor, details, prev_hash, hash FROM pii_audit_log WHERE request_id = ${auditRequestId(requestId)} ORDER BY id`;
  return rows.map(fromRow);
}

/** The ID up to which the trail's entries predate a role per writer (migration 0006): none of them is trusted. */
export async function writersTrustedAfter(db: Queryable): Promise<bigint> {
  const [{ id }] = await db.$queryRaw<{ id: bigint }[]>`SELECT pii_audit_writers_trusted_after() AS id`;
  return BigInt(id);
}
