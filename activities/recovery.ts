// The recovery activities: every check and every side effect of a PII recovery. They run
// on a task queue of their own (recovery-worker.ts), and each one treats its input as
// untrusted: anyone with access to the namespace can schedule them from a workflow of
// their own. So nothing here believes the caller. The request ID comes from the workflow
// ID the server reports; the requester, the frozen record set and the expiry come from the
// audit trail; the decrypting activity verifies the signed request and the signed approval
// itself against the operator registry, reads exactly the record set the approver signed,
// and consumes its single-use grant in the same transaction that writes the `record_read`
// entries (activities/recovery-read.ts). Values leave only sealed to the requester's one-time key.
import { log } from '@temporalio/activity';
import { auditEntriesFor, type StoredAuditEntry } from '../lib/recovery/audit';
import { hasRole, validateApprovalBody, validateRequestBody, type ApprovalBody, type RecoveryRequestBody } from '../lib/recovery';
import { findRecords, recordSetHash, type RecordRef } from '../lib/recovery/records';
import { authorisationOf } from '../lib/recovery/grant';
import { recoveryWorkflowId } from '../lib/contract/names';
import { caller, claimedRequestId, guarded, recoveryContext, refusal, signatureOf, type RecoveryDeps } from './recovery-common';
import { createRecoverRecords } from './recovery-read';

export type { RecoveryPolicy } from '../lib/contract/recovery';

export type { RecoveryDeps } from './recovery-common';

/** What the workflow (and through its status, the approver) learns from an authorisation. */
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
  approvalRequired: boolean;
  expiresAt: string;
}
export type Authorisation = Authorised | { ok: false; requestId: string; code: string; detail: string };

export type ApprovalVerdict =
  { ok: true; approver: string; decision: 'approve' | 'deny' } | { ok: false; code: string; detail: string };

export function createRecoveryActivities(deps: RecoveryDeps) {
  const { db, policy } = deps;
  const { audit, verify } = recoveryContext(deps);

  const authorised = (request: RecoveryRequestBody, entry: StoredAuditEntry): Authorised => ({
    ok: true,
    requestId: request.requestId,
    requester: request.operator,
    reason: request.reason,
    ticket: request.ticket,
    selector: request.selector,
    fields: request.fields,
    records: entry.details.records as RecordRef[],
    recordSetHash: entry.details.recordSetHash as string,
    approvalRequired: entry.details.approvalRequired as boolean,
    expiresAt: entry.details.expiresAt as string,
  });

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
        // A retry of this activity in the same run: what was decided then stands.
        const before = entries.find((e) => e.event === 'authorised' && e.details.runId === ctx.runId);
        if (before) return authorised(request, before);
        const refusedBefore = entries.find((e) => e.event === 'request_refused' && e.details.runId === ctx.runId);
        if (refusedBefore)
          return { ok: false, requestId, code: String(refusedBefore.details.code), detail: String(refusedBefore.details.detail) };
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
        const expiresAt = new Date(Date.now() + policy.approvalTimeoutSeconds * 1000).toISOString();
        const [entry] = await audit({
          requestId,
          event: 'authorised',
          actor: null,
          details: { records, recordSetHash: hash, approvalRequired: policy.requireApproval, expiresAt, ...where },
        });
        return authorised(request, entry);
      });
    },

    /**
     * Judges a signed approval or denial for the request of the calling workflow (the
     * request ID comes from its workflow ID, the requester and record set from the trail).
     */
    async verifyApproval(signed: unknown): Promise<ApprovalVerdict> {
      return guarded('verifyApproval', async () => {
        const ctx = caller();
        const requestId = ctx.requestId ?? 'unknown';
        const result = verify<ApprovalBody>(signed, 'pii-recovery-approval', validateApprovalBody);
        const entries = ctx.requestId ? await auditEntriesFor(db, ctx.requestId) : [];
        const received = entries.find((e) => e.event === 'request_received');
        const request = received?.details.document as RecoveryRequestBody | undefined;
        const grant = request ? authorisationOf(entries, request) : undefined;
        let verdict: ApprovalVerdict;
        if (!result.ok) verdict = { ok: false, code: result.code, detail: result.detail };
        else if (!request || !grant)
          verdict = { ok: false, code: 'not_authorised', detail: 'no authorised request runs under this workflow' };
        else if (result.body.requestId !== requestId)
          verdict = { ok: false, code: 'wrong_request', detail: `signed for request ${result.body.requestId}` };
        else if (result.body.operator === request.operator)
          verdict = { ok: false, code: 'self_approval', detail: 'the requester cannot decide on their own request' };
        else if (!hasRole(result.operator, 'pii-approver'))
          verdict = { ok: false, code: 'not_an_approver', detail: `${result.body.operator} does not hold pii-approver` };
        else if (result.body.decision === 'approve' && result.body.recordSetHash !== grant.details.recordSetHash) {
          verdict = {
            ok: false,
            code: 'wrong_record_set',
            detail: 'the approval signs another record set than the one frozen for this request',
          };
        } else if (Date.parse(result.body.issuedAt) > Date.parse(String(grant.details.expiresAt)))
          verdict = { ok: false, code: 'expired', detail: 'the request expired before this decision' };
        else verdict = { ok: true, approver: result.body.operator, decision: result.body.decision };

        const actor = result.ok ? result.body.operator : null;
        if (verdict.ok) {
          await audit({
            requestId,
            event: verdict.decision === 'approve' ? 'approved' : 'denied',
            actor,
            details: {
              by: 'approver',
              document: result.ok ? result.body : null,
              ...(result.ok ? signatureOf(signed, result.operator) : {}),
              runId: ctx.runId,
            },
          });
        } else {
          await audit({
            requestId,
            event: 'approval_refused',
            actor,
            details: { code: verdict.code, detail: verdict.detail, runId: ctx.runId },
          });
          log.warn('Approval refused', { requestId, code: verdict.code });
        }
        return verdict;
      });
    },

    /** Audits the expiry of the calling workflow's request, once its time has really passed and nothing was read. */
    async expireRequest(): Promise<void> {
      return guarded('expireRequest', async () => {
        const { requestId } = caller();
        if (!requestId) throw refusal('not_a_recovery', 'not called by a recovery workflow');
        const entries = await auditEntriesFor(db, requestId);
        if (entries.some((e) => e.event === 'expired')) return;
        const grant = entries.find((e) => e.event === 'authorised');
        if (!grant) throw refusal('not_authorised', `request ${requestId} was never authorised`);
        if (Date.now() < Date.parse(String(grant.details.expiresAt)) - 5000)
          throw refusal('not_authorised', `request ${requestId} expires only at ${String(grant.details.expiresAt)}`);
        if (entries.some((e) => e.event === 'grant_consumed'))
          throw refusal('grant_consumed', `request ${requestId} was already carried out`);
        await audit({
          requestId,
          event: 'expired',
          actor: null,
          details: { code: 'expired', detail: `no valid decision by ${String(grant.details.expiresAt)}` },
        });
      });
    },

    recoverRecords: createRecoverRecords(deps),
  };
}

export type RecoveryActivities = ReturnType<typeof createRecoveryActivities>;
