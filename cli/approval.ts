// The approver's side of a PII recovery: what `requests`, `approve` and `deny` show and sign.
// Everything shown comes from the audit trail, read with the operators' database role and
// verified on this machine against this machine's operator registry
// (lib/recovery/trail.ts): the signed request (requester, reason, ticket, selector, fields,
// the key the result is sealed to), the record set the recovery side froze, whose each
// record is, and the decision that counts. A running workflow's status is never believed:
// it is compared with the trail, and a workflow that describes a request otherwise than its
// requester signed it is reported as an attack and refused. A decision is signed over the
// request's digest and the record-set hash and appended to the trail by this CLI itself, so
// no workflow can drop or alter it; the workflow is then only nudged to read the trail.
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import { recoveryWorkflowId, requestIdOfRecoveryWorkflow } from '../lib/contract/names';
import type { Config } from '../lib/platform/config';
import type { Db } from '../lib/platform/db';
import { keyFingerprint, loadRegistry, sign, type ApprovalBody, type OperatorRegistry } from '../lib/recovery';
import { appendAudit, auditEntriesFor, writersTrustedAfter, type StoredAuditEntry } from '../lib/recovery/audit';
import { recordOwners, recordsOutsideSelector, type RecordRef } from '../lib/recovery/records';
import { decisionOf, readRequest, type Decision, type TrailRequest } from '../lib/recovery/trail';
import { sameJson } from '../lib/recovery/canonical-json';
import { decisionUpdate, statusQuery, type RecoveryStatus } from '../workflows/recovery';
import { signingKey, type SigningIdentity } from './recovery-client';

/** A request as an approver is shown it: verified from the trail, with what contradicts it. */
export interface ShownRequest {
  requestId: string;
  trail: TrailRequest;
  /** user ID of every row of the record set; quarantine entries have none. */
  owners: Map<string, string>;
  /** Records of the frozen set that the signed selector does not match (should be none). */
  outside: RecordRef[];
  decision: Decision;
  /** Where the trail stands: awaiting a decision, decided, expired, carried out. */
  state: 'awaiting_decision' | 'approved' | 'denied' | 'expired' | 'carried_out' | 'not_authorised';
  /** How a running workflow's status contradicts the trail (an attack); empty when it agrees or no workflow answers. */
  contradictions: string[];
}

/** A request the trail cannot vouch for, or a workflow that claims one. */
export interface UnverifiedRequest {
  requestId: string;
  problem: string;
}

const ENDED: Record<string, ShownRequest['state']> = {
  grant_consumed: 'carried_out',
  completed: 'carried_out',
  failed: 'carried_out',
  expired: 'expired',
};

function stateOf(entries: StoredAuditEntry[], trail: TrailRequest, decision: Decision, now: number): ShownRequest['state'] {
  for (const e of entries) if (ENDED[e.event]) return ENDED[e.event];
  if (!trail.authorised) return 'not_authorised';
  if (decision.decided) return decision.decision === 'approve' ? 'approved' : 'denied';
  return Date.parse(trail.authorised.expiresAt) < now ? 'expired' : 'awaiting_decision';
}

/** Where a workflow's status says something other than the trail. */
export function contradictionsOf(status: RecoveryStatus, trail: TrailRequest): string[] {
  const r = trail.request;
  const claims: [string, unknown, unknown][] = [
    ['requester', status.requester, r.operator],
    ['reason', status.reason, r.reason],
    ['ticket', status.ticket, r.ticket],
    ['selector', status.selector, r.selector],
    ['fields', status.fields, r.fields],
  ];
  if (trail.authorised) {
    claims.push(['record set', status.recordSet, trail.authorised.records]);
    claims.push(['record-set hash', status.recordSetHash, trail.authorised.recordSetHash]);
  }
  return claims
    .filter(([, shown, signed]) => shown !== null && shown !== undefined && !sameJson(shown, signed))
    .map(
      ([what, shown, signed]) =>
        `${what}: the workflow says ${JSON.stringify(shown)}, the signed request ${JSON.stringify(signed)}`,
    );
}

/** The operator registry of this machine; a bad line is an error naming it. */
export function localRegistry(config: Config): OperatorRegistry {
  return loadRegistry(config.recovery.operatorsFile);
}

/** The workflow's status, if a workflow of that ID answers at all (its answer is only compared, never believed). */
async function workflowStatus(client: Client | null, requestId: string): Promise<RecoveryStatus | null> {
  if (!client) return null;
  try {
    return await client.workflow.getHandle(recoveryWorkflowId(requestId)).query(statusQuery);
  } catch {
    return null;
  }
}

/** Reads and verifies one request from the trail; `problem` when the trail cannot vouch for it. */
export async function showRequest(
  db: Db,
  client: Client | null,
  config: Config,
  requestId: string,
): Promise<{ ok: true; shown: ShownRequest } | ({ ok: false } & UnverifiedRequest)> {
  const registry = localRegistry(config);
  const entries = await auditEntriesFor(db, requestId);
  const read = readRequest(entries, requestId, registry, config.recovery, await writersTrustedAfter(db));
  if (!read.ok) return { ok: false, requestId, problem: `${read.code}: ${read.detail}` };
  const { trail } = read;
  const records = trail.authorised?.records ?? [];
  const decision = decisionOf(entries, trail, registry, config.recovery);
  const status = await workflowStatus(client, requestId);
  return {
    ok: true,
    shown: {
      requestId,
      trail,
      owners: await recordOwners(db, records),
      outside: await recordsOutsideSelector(db, trail.request.selector, records),
      decision,
      state: stateOf(entries, trail, decision, Date.now()),
      contradictions: status ? contradictionsOf(status, trail) : [],
    },
  };
}

/** What an approver reads before signing: every field of the signed request, every record and whose it is. */
export function describeShown(s: ShownRequest): string {
  const r = s.trail.request;
  const auth = s.trail.authorised;
  const perUser = new Map<string, number>();
  for (const rec of auth?.records ?? []) {
    const owner = rec.table === 'user_logins' ? (s.owners.get(rec.messageId) ?? '(row gone)') : '(quarantine entry)';
    perUser.set(owner, (perUser.get(owner) ?? 0) + 1);
  }
  const lines = [
    `${s.requestId}  ${s.state}  expires ${auth?.expiresAt ?? '-'}`,
    `    requester:  ${r.operator} (signature verified against ${'this machine\u2019s'} registry)`,
    `    reason:     ${r.reason}`,
    `    ticket:     ${r.ticket}`,
    `    selector:   ${JSON.stringify(r.selector)}`,
    `    fields:     ${r.fields.join(', ')}`,
    `    sealed to:  ${keyFingerprint(r.recipientPublicKey).slice(0, 16)}… (the requester's one-time key)`,
    `    records:    ${auth ? auth.records.length : 'not frozen yet'}`,
    ...(auth?.records ?? []).map(
      (rec) =>
        `      ${rec.table}:${rec.messageId}  ${rec.table === 'user_logins' ? `user ${s.owners.get(rec.messageId) ?? '(row gone)'}` : '(quarantine entry)'}`,
    ),
    `    per user:   ${[...perUser].map(([u, n]) => `${u} × ${n}`).join(', ') || '-'}`,
    `    request digest: ${s.trail.digest}`,
    `    record set:     ${auth?.recordSetHash ?? '-'}`,
  ];
  if (s.outside.length)
    lines.push(
      `    !! ${s.outside.length} record(s) do not match the signed selector: ${s.outside.map((x) => x.messageId).join(', ')}`,
    );
  for (const c of s.contradictions) lines.push(`    !! ATTACK: ${c}`);
  return lines.join('\n');
}

/** Request IDs the trail shows authorised and not yet ended, and the IDs of running recovery workflows. */
export async function candidateRequests(db: Db, client: Client | null): Promise<string[]> {
  const rows = await db.$queryRaw<{ request_id: string }[]>`
    SELECT DISTINCT a.request_id FROM pii_audit_log a
     WHERE a.event = 'authorised'
       AND NOT EXISTS (SELECT 1 FROM pii_audit_log e WHERE e.request_id = a.request_id
                        AND e.event IN ('grant_consumed', 'expired', 'completed', 'failed', 'denied'))`;
  const ids = new Set(rows.map((r) => r.request_id));
  if (client) {
    for await (const wf of client.workflow.list({ query: `WorkflowType = 'recoveryWorkflow' AND ExecutionStatus = 'Running'` })) {
      const id = requestIdOfRecoveryWorkflow(wf.workflowId);
      if (id) ids.add(id);
    }
  }
  return [...ids];
}

/** Pending requests as the trail vouches for them, and every request or workflow it cannot vouch for. */
export async function pendingRequests(
  db: Db,
  client: Client | null,
  config: Config,
): Promise<{ pending: ShownRequest[]; unverified: UnverifiedRequest[] }> {
  const pending: ShownRequest[] = [];
  const unverified: UnverifiedRequest[] = [];
  for (const id of await candidateRequests(db, client)) {
    const r = await showRequest(db, client, config, id);
    if (!r.ok) unverified.push({ requestId: r.requestId, problem: r.problem });
    else if (r.shown.state === 'awaiting_decision') pending.push(r.shown);
  }
  return { pending, unverified };
}

/** Why this approver must not approve what is shown, or null. */
export function approvalProblem(s: ShownRequest): string | null {
  if (s.contradictions.length)
    return `ATTACK: the running workflow describes request ${s.requestId} otherwise than its requester signed it; not approving. Deny it, and report it.`;
  if (s.outside.length) return `the frozen record set names records the signed selector does not match; not approving`;
  if (s.state !== 'awaiting_decision') return `request ${s.requestId} is ${s.state}, not awaiting a decision`;
  return null;
}

export interface DecisionOutcome {
  /** The trail's decision once this one was appended: it may be another approver's that came first. */
  decision: Decision;
  /** Whether the decision that counts is the one just signed. */
  counted: boolean;
  /** What the workflow said when nudged, or why it could not be. */
  nudge: string;
}

/**
 * Signs a decision over the request's digest and frozen record set (for a denial, over what
 * the trail holds, if anything), appends it to the trail with the operators' role, reads the
 * trail's decision back and nudges the workflow to act on it.
 */
export async function decideOnTrail(
  db: Db,
  client: Client,
  config: Config,
  who: SigningIdentity,
  requestId: string,
  decision: 'approve' | 'deny',
  shown: ShownRequest | null,
  comment?: string,
): Promise<DecisionOutcome> {
  const body: ApprovalBody = {
    type: 'pii-recovery-approval',
    requestId,
    operator: who.operator,
    decision,
    ...(shown ? { requestDigest: shown.trail.digest } : {}),
    ...(shown?.trail.authorised ? { recordSetHash: shown.trail.authorised.recordSetHash } : {}),
    issuedAt: new Date().toISOString(),
    ...(comment ? { comment } : {}),
  };
  const key = signingKey(config, who);
  const signed = sign(body, key);
  const [mine] = await appendAudit(db, [
    {
      requestId,
      event: 'decision_signed',
      actor: who.operator,
      details: { document: signed.body, signature: signed.signature },
    },
  ]);
  const after = shown ? await showRequest(db, null, config, requestId) : null;
  const now: Decision = after?.ok ? after.shown.decision : { decided: false, refused: [] };
  let nudge: string;
  try {
    const verdict = await client.workflow.getHandle(recoveryWorkflowId(requestId)).executeUpdate(decisionUpdate);
    nudge = verdict.decided
      ? `the workflow answered (an answer, not evidence: the trail above is): ${verdict.decision} by ${verdict.approver}`
      : `the workflow answered (an answer, not evidence): ${verdict.code}`;
  } catch (err) {
    nudge =
      err instanceof WorkflowUpdateFailedError
        ? 'the workflow is not awaiting a decision'
        : 'no workflow answered; the recovery side reads the trail when the request falls due';
  }
  return { decision: now, counted: now.decided && now.entry.id === mine.id, nudge };
}

/** Waits (20 s at most) for the trail to show an approved request carried out or refused. */
export async function awaitCarriedOut(db: Db, requestId: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const ended = (await auditEntriesFor(db, requestId)).find((e) =>
      ['completed', 'failed', 'request_refused', 'expired'].includes(e.event),
    );
    if (ended) return ended.event === 'request_refused' ? `refused: ${String(ended.details.code)}` : ended.event;
    await sleep(200);
  }
  return 'not carried out yet (is a recovery worker running?)';
}
