// The recovery activities: every check and every side effect of a PII recovery. They run
// on a task queue of their own (recovery-worker.ts), with a database role of their own
// (login_ingest_recovery, migration 0006), and each one treats its input as untrusted:
// anyone with access to the namespace can schedule them from a workflow of their own. So
// nothing here believes the caller. The request ID comes from the workflow ID the server
// reports; the request, the frozen record set, the expiry and the decision come from the
// audit trail (lib/recovery/trail.ts), read and verified afresh by each activity. Approvers
// write their signed decisions to the trail themselves, so a workflow can neither invent
// nor drop one; the decrypting activity is in activities/recovery-read.ts.
import { log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { appendAudit, auditEntriesFor, type AuditEntry, type StoredAuditEntry } from '../lib/recovery/audit';
import { hasRole, requestDigest, validateRequestBody, type RecoveryRequestBody } from '../lib/recovery';
import { findRecords, recordSetHash, type RecordRef } from '../lib/recovery/records';
import { decisionOf, type Decision, type TrailRequest } from '../lib/recovery/trail';
import { recoveryWorkflowId } from '../lib/contract/names';
import {
  caller,
  claimedRequestId,
  databaseNow,
  guarded,
  readTrail,
  recoveryContext,
  refusal,
  signatureOf,
  type RecoveryDeps,
} from './recovery-common';
import { createRecoverRecords } from './recovery-read';

export type { RecoveryPolicy } from '../lib/contract/recovery';

export type { RecoveryDeps } from './recovery-common';

/**
 * What the workflow learns from an authorisation. Its status shows it, but approvers never
 * rely on that: they read and verify the request in the trail (cli/recovery-trail.ts).
 */
export interface Authorised {
  ok: true;
  requestId: string;
  requester: string;
  reason: string;
  ticket: string;
  selector: RecoveryRequestBody['selector'];
  fields: RecoveryRequestBody['fields'];
  records: RecordRef[];
  recordSetHash: string;
  /** SHA-256 of the signed request (lib/recovery/documents.ts requestDigest): what an approval signs with the record set. */
  requestDigest: string;
  approvalRequired: boolean;
  expiresAt: string;
}
export type Authorisation = Authorised | { ok: false; requestId: string; code: string; detail: string };

/** The decision the trail holds for the calling workflow's request, as judged by the recovery side. */
export type DecisionVerdict =
  { decided: true; decision: 'approve' | 'deny'; approver: string } | { decided: false; code: string; detail: string };

/** What expireRequest found: the request expired, or a decision reached the trail in time after all. */
export type ExpiryOutcome = { expired: true } | { expired: false; verdict: DecisionVerdict & { decided: true } };

const authorisedFrom = (trail: TrailRequest, approvalRequired: boolean): Authorised => ({
  ok: true,
  requestId: trail.requestId,
  requester: trail.request.operator,
  reason: trail.request.reason,
  ticket: trail.request.ticket,
  selector: trail.request.selector,
  fields: trail.request.fields,
  records: trail.authorised!.records,
  recordSetHash: trail.authorised!.recordSetHash,
  requestDigest: trail.digest,
  approvalRequired,
  expiresAt: trail.authorised!.expiresAt,
});

/** Verdicts already in the trail for these decision entries (judged before, by another call). */
const judgedEntries = (entries: StoredAuditEntry[]) =>
  new Set(
    entries
      .filter((e) => ['approved', 'denied', 'approval_refused'].includes(e.event) && typeof e.details.decisionEntry === 'string')
      .map((e) => e.details.decisionEntry as string),
  );

export function createRecoveryActivities(deps: RecoveryDeps) {
  const { db, policy } = deps;
  const { audit, verify, registry, now } = recoveryContext(deps);

  /**
   * Judges the trail's decisions for a request and records the verdicts (once each, under
   * the chain's lock, so two calls at once write one verdict).
   */
  const judge = async (
    requestId: string,
    runId: string,
  ): Promise<{ trail: TrailRequest; decision: Decision; entries: StoredAuditEntry[] }> => {
    const reg = registry(); // a bad registry line fails before the database is asked
    return db.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT pg_advisory_xact_lock(7233002)::text AS locked`;
      const read = await readTrail(tx, requestId, reg, policy);
      if (!read.ok) throw refusal(read.code, read.detail);
      const { entries } = read;
      const decision = decisionOf(entries, read.trail, reg, policy);
      const judged = judgedEntries(entries);
      const verdicts: AuditEntry[] = decision.refused
        .filter((r) => !judged.has(r.entryId))
        .map((r) => ({
          requestId,
          event: 'approval_refused',
          actor: null,
          details: { decisionEntry: r.entryId, code: r.code, detail: r.detail, runId },
        }));
      if (decision.decided && !judged.has(decision.entry.id)) {
        verdicts.push({
          requestId,
          event: decision.decision === 'approve' ? 'approved' : 'denied',
          actor: decision.approver,
          details: { decisionEntry: decision.entry.id, runId },
        });
        log.info('Recovery decided', { requestId, decision: decision.decision });
      }
      if (verdicts.length) await appendAudit(tx, verdicts);
      return { trail: read.trail, decision, entries };
    });
  };

  /** The authorisation as the trail holds it, verified; a refusal when the trail cannot vouch for it. */
  const authorisedInTrail = async (requestId: string): Promise<Authorised> => {
    const read = await readTrail(db, requestId, registry(), policy);
    if (!read.ok) throw refusal(read.code, read.detail);
    if (!read.trail.authorised) throw refusal('not_authorised', `request ${requestId} was never authorised`);
    return authorisedFrom(read.trail, policy.requireApproval);
  };

  const verdictOf = (decision: Decision): DecisionVerdict =>
    decision.decided
      ? { decided: true, decision: decision.decision, approver: decision.approver }
      : {
          decided: false,
          code: decision.refused.length ? decision.refused[decision.refused.length - 1].code : 'no_decision',
          detail: decision.refused.length
            ? `${decision.refused.length} decision(s) in the trail do not count; the last: ${decision.refused[decision.refused.length - 1].detail}`
            : 'the trail holds no decision for this request yet',
        };

  return {
    /**
     * Verifies a signed request (signature, freshness, one run per request, role), freezes
     * the record set it names and audits all of it. Called by the recovery workflow first.
     */
    async authoriseRequest(signed: unknown): Promise<Authorisation> {
      return guarded('authoriseRequest', async () => {
        const ctx = caller();
        const result = verify<RecoveryRequestBody>(signed, 'pii-recovery-request', validateRequestBody);
        const requestId = result.ok ? result.body.requestId : claimedRequestId(signed);
        const where = { workflowId: ctx.workflowId.slice(0, 200), runId: ctx.runId };
        const refuse = async (code: string, detail: string, actor: string | null): Promise<Authorisation> => {
          await audit({ requestId, event: 'request_refused', actor, details: { code, detail, ...where } });
          log.warn('Recovery request refused', { requestId, code });
          return { ok: false, requestId, code, detail };
        };
        if (!result.ok) return refuse(result.code, result.detail, null);
        const request = result.body;
        // One signed request, one run: its workflow ID is derived from the request ID, and a
        // request seen before (under another run) is a replay.
        if (ctx.workflowId !== recoveryWorkflowId(requestId)) {
          return refuse('replayed', `a request must run as ${recoveryWorkflowId(requestId)}`, request.operator);
        }
        const entries = await auditEntriesFor(db, requestId);
        const earlier = entries.find((e) => e.event === 'request_received' && e.details.runId !== ctx.runId);
        if (earlier)
          return refuse('replayed', `request ${requestId} was already received (audit entry ${earlier.id})`, request.operator);
        const refusedBefore = entries.find((e) => e.event === 'request_refused' && e.details.runId === ctx.runId);
        if (refusedBefore)
          return { ok: false, requestId, code: String(refusedBefore.details.code), detail: String(refusedBefore.details.detail) };
        // A retry of this activity in the same run: what was decided then stands, as the trail holds it, verified.
        if (entries.some((e) => e.event === 'authorised')) {
          return authorisedInTrail(requestId);
        }
        if (!entries.some((e) => e.event === 'request_received')) {
          await audit({
            requestId,
            event: 'request_received',
            actor: request.operator,
            // The signed document itself, its signature and the key's fingerprint: a third party can verify it.
            details: { document: request, ...signatureOf(signed, result.operator), ...where },
          });
        }
        if (!hasRole(result.operator, 'pii-requester'))
          return refuse('not_a_requester', `${request.operator} does not hold pii-requester`, request.operator);
        const records = await findRecords(db, request.selector, policy.maxRecords + 1);
        if (records.length === 0) return refuse('no_records', 'the selector matches no record', request.operator);
        if (records.length > policy.maxRecords)
          return refuse('too_many_records', `the selector matches more than ${policy.maxRecords} records`, request.operator);
        const hash = recordSetHash({ requestId, selector: request.selector, fields: request.fields, records });
        // By the database's clock, which stamps every entry: the trail checks the expiry against the entry's own time.
        const expiresAt = new Date((await databaseNow(db)) + policy.approvalTimeoutSeconds * 1000).toISOString();
        await audit({
          requestId,
          event: 'authorised',
          actor: null,
          details: {
            records,
            recordSetHash: hash,
            requestDigest: requestDigest(request),
            approvalRequired: policy.requireApproval,
            expiresAt,
            ...where,
          },
        });
        return authorisedInTrail(requestId);
      });
    },

    /**
     * Judges the decisions approvers wrote to the trail for the calling workflow's request:
     * the first that verifies counts (lib/recovery/trail.ts decisionOf). A workflow calls it
     * when an approver's CLI tells it a decision is there; what it is told carries nothing.
     */
    async judgeDecision(): Promise<DecisionVerdict> {
      return guarded('judgeDecision', async () => {
        const ctx = caller();
        if (!ctx.requestId) throw refusal('not_a_recovery', 'not called by a recovery workflow');
        return verdictOf((await judge(ctx.requestId, ctx.runId)).decision);
      });
    },

    /**
     * Audits the expiry of the calling workflow's request, once its time has really passed,
     * nothing was read and no decision reached the trail in time (one that did is returned
     * instead). A worker whose clock is behind the workflow's timer retries until its own
     * clock agrees, so the run still ends.
     */
    async expireRequest(): Promise<ExpiryOutcome> {
      return guarded('expireRequest', async () => {
        const { requestId, runId } = caller();
        if (!requestId) throw refusal('not_a_recovery', 'not called by a recovery workflow');
        const { trail, decision, entries } = await judge(requestId, runId);
        if (decision.decided)
          return { expired: false, verdict: { decided: true, decision: decision.decision, approver: decision.approver } };
        if (entries.some((e) => e.event === 'expired')) return { expired: true };
        if (!trail.authorised) throw refusal('not_authorised', `request ${requestId} was never authorised`);
        if (entries.some((e) => e.event === 'grant_consumed'))
          throw refusal('grant_consumed', `request ${requestId} was already carried out`);
        const waitMs = Date.parse(trail.authorised.expiresAt) - now();
        if (waitMs > 0)
          throw ApplicationFailure.retryable(
            `request ${requestId} expires at ${trail.authorised.expiresAt}, ${Math.ceil(waitMs / 1000)} s from now by this worker's clock (behind the workflow's timer?); retrying`,
            'not_yet_expired',
          );
        await audit({
          requestId,
          event: 'expired',
          actor: null,
          details: { code: 'expired', detail: `no valid decision by ${trail.authorised.expiresAt}` },
        });
        return { expired: true };
      });
    },

    recoverRecords: createRecoverRecords(deps),
  };
}

export type RecoveryActivities = ReturnType<typeof createRecoveryActivities>;
