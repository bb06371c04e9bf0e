// The recovery activities: every check and every side effect of a PII recovery. They run
// on a task queue of their own (recovery-worker.ts), and each one treats its input as
// untrusted: anyone with access to the namespace can schedule them from a workflow of
// their own. So nothing here believes the caller. The request ID comes from the workflow
// ID the server reports; the requester, the frozen record set and the expiry come from the
// audit trail; the decrypting activity verifies the signed request and the signed approval
// itself against the operator registry, reads exactly the record set the approver signed,
// and consumes its single-use grant in the same transaction that writes the `record_read`
// entries. Values leave this module only sealed to the requester's one-time key.
import { log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { appendAudit, auditEntriesFor, type AuditEntry, type StoredAuditEntry } from '../lib/recovery/audit';
import type { Db } from '../lib/platform/db';
import type { Keyring } from '../lib/pii/keyring';
import {
  hasRole,
  validateApprovalBody,
  validateRequestBody,
  verifySigned,
  type ApprovalBody,
  type RecoveryRequestBody,
  type VerifyResult,
} from '../lib/recovery';
import { decryptRecords, findRecords, recordSetHash, type RecordRef } from '../lib/recovery/records';
import { authorisationOf, consumeGrant } from '../lib/recovery/grant';
import { sealTo, type SealedBox } from '../lib/pii/sealed';
import { recoveryWorkflowId } from '../lib/contract/names';
import type { RecoveryPolicy, RecoveryRefusal } from '../lib/contract/recovery';
import { caller, claimedRequestId, guarded, refusal, registry, sameJson, signatureOf } from './recovery-common';

export type { RecoveryPolicy } from '../lib/contract/recovery';

export interface RecoveryDeps {
  db: Db;
  keyring: Keyring;
  /** The operator registry file; read at every check, so a new operator needs no restart. */
  operatorsFile: string;
  policy: RecoveryPolicy;
}

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

export function createRecoveryActivities({ db, keyring, operatorsFile, policy }: RecoveryDeps) {
  const audit = (...entries: AuditEntry[]) => appendAudit(db, entries);
  const verify = <T extends { operator: string; issuedAt: string; type: string }>(
    signed: unknown,
    type: T['type'],
    validateBody: (b: unknown) => string | null,
    maxAgeSeconds = policy.signatureMaxAgeSeconds,
  ): VerifyResult<T> => verifySigned<T>(signed, type, registry(operatorsFile), new Date(), maxAgeSeconds * 1000, validateBody);

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

    /**
     * Decrypts the frozen record set of a request, sealed to the requester's one-time key.
     * Verifies here, against the registry: the signed request (signature, requester role,
     * received and authorised through authoriseRequest) and, with four-eyes on, the signed
     * approval (signature, approver role, another operator, fresh, this request, this
     * record set). The single-use grant is consumed in the transaction that writes the
     * `record_read` entries, before any value is decrypted: a retry after success, a reset,
     * a replayed approval or a foreign workflow decrypts nothing more.
     */
    async recoverRecords(input: {
      signedRequest: unknown;
      signedApproval: unknown;
    }): Promise<{ sealed: SealedBox; records: number }> {
      return guarded('recoverRecords', async () => {
        const ctx = caller();
        const signedRequest = (input as { signedRequest?: unknown } | null)?.signedRequest;
        const signedApproval = (input as { signedApproval?: unknown } | null)?.signedApproval ?? null;
        const requestId = claimedRequestId(signedRequest);
        const refuse = async (code: RecoveryRefusal, detail: string, actor: string | null = null): Promise<never> => {
          await audit({
            requestId,
            event: 'request_refused',
            actor,
            details: { code, detail, stage: 'recover', workflowId: ctx.workflowId.slice(0, 200), runId: ctx.runId },
          });
          log.warn('Recovery refused', { requestId, code });
          throw refusal(code, detail);
        };
        // The request was fresh when authorised; here it only has to be authentic and no older than a request can wait.
        const req = verify<RecoveryRequestBody>(
          signedRequest,
          'pii-recovery-request',
          validateRequestBody,
          policy.approvalTimeoutSeconds + policy.signatureMaxAgeSeconds + 600,
        );
        if (!req.ok) return refuse('bad_request', `the request does not verify: ${req.code} (${req.detail})`);
        const request = req.body;
        if (ctx.workflowId !== recoveryWorkflowId(request.requestId))
          return refuse('not_a_recovery', 'not called by the recovery workflow of this request', request.operator);
        if (!hasRole(req.operator, 'pii-requester'))
          return refuse('bad_request', `${request.operator} does not hold pii-requester`, request.operator);

        const entries = await auditEntriesFor(db, request.requestId);
        const received = entries.find((e) => e.event === 'request_received');
        if (!received || !sameJson(received.details.document, request)) {
          return refuse('not_authorised', 'this request was never received and authorised', request.operator);
        }

        let approvalHash: string | undefined;
        let approvalDetails: Record<string, unknown> = { approvalRequired: false };
        if (policy.requireApproval || signedApproval !== null) {
          const appr = verify<ApprovalBody>(signedApproval, 'pii-recovery-approval', validateApprovalBody);
          if (!appr.ok)
            return refuse('bad_approval', `the approval does not verify: ${appr.code} (${appr.detail})`, request.operator);
          const a = appr.body;
          const problem =
            a.requestId !== request.requestId
              ? 'it is signed for another request'
              : a.decision !== 'approve'
                ? 'it is a denial'
                : a.operator === request.operator
                  ? 'the requester cannot approve their own request'
                  : !hasRole(appr.operator, 'pii-approver')
                    ? `${a.operator} does not hold pii-approver`
                    : null;
          if (problem) return refuse('bad_approval', `the approval does not count: ${problem}`, request.operator);
          approvalHash = a.recordSetHash;
          approvalDetails = { approver: a.operator, approval: a, ...signatureOf(signedApproval, appr.operator) };
        }
        const grant = authorisationOf(entries, request, approvalHash);
        if (!grant)
          return refuse(
            'not_authorised',
            approvalHash ? 'no authorised record set of this request matches the approval' : 'this request was never authorised',
            request.operator,
          );
        if (Date.now() > Date.parse(String(grant.details.expiresAt)))
          return refuse(
            'expired',
            `request ${request.requestId} expired at ${String(grant.details.expiresAt)}`,
            request.operator,
          );
        const records = grant.details.records as RecordRef[];
        const recordSet = grant.details.recordSetHash as string;

        // The grant is consumed, and the trail written, in one transaction, before a single value is decrypted.
        const consumed = await consumeGrant(db, {
          requestId: request.requestId,
          requester: request.operator,
          recordSetHash: recordSet,
          records,
          fields: request.fields,
          details: { ...approvalDetails, runId: ctx.runId },
        });
        if (!consumed)
          return refuse(
            'grant_consumed',
            `request ${request.requestId} was already carried out: a grant is good for one recovery`,
            request.operator,
          );

        try {
          const values = await decryptRecords(db, keyring, records, request.fields);
          const sealed = sealTo(request.recipientPublicKey, JSON.stringify(values), request.requestId);
          await audit({
            requestId: request.requestId,
            event: 'completed',
            actor: request.operator,
            details: { records: records.length },
          });
          log.info('Recovery completed', { requestId: request.requestId, records: records.length });
          return { sealed, records: records.length };
        } catch (err) {
          // The grant is spent either way: a new request is needed.
          await audit({
            requestId: request.requestId,
            event: 'failed',
            actor: null,
            details: { error: String((err as Error)?.message ?? err).slice(0, 200) },
          }).catch(() => {});
          throw ApplicationFailure.nonRetryable(
            `Recovery of request ${request.requestId} failed after its grant was consumed; make a new request`,
            'recovery_failed',
          );
        }
      });
    },
  };
}

export type RecoveryActivities = ReturnType<typeof createRecoveryActivities>;
