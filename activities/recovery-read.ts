// The decrypting recovery activity, `recoverRecords`: the one place PII comes back out of the
// database. It believes nothing it is given: it verifies the signed request and (with
// four-eyes on) the signed approval itself against the operator registry, reads exactly
// the record set the approver signed, consumes the single-use grant in the transaction that
// writes the `record_read` entries, and returns the values only sealed to the requester's
// one-time key. The other recovery activities are in activities/recovery.ts.
import { log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { auditEntriesFor } from '../lib/recovery/audit';
import { hasRole, validateApprovalBody, validateRequestBody, type ApprovalBody, type RecoveryRequestBody } from '../lib/recovery';
import { decryptRecords, type RecordRef } from '../lib/recovery/records';
import { authorisationOf, consumeGrant } from '../lib/recovery/grant';
import { sealTo, type SealedBox } from '../lib/pii/sealed';
import { recoveryWorkflowId } from '../lib/contract/names';
import type { RecoveryRefusal } from '../lib/contract/recovery';
import { caller, claimedRequestId, guarded, refusal, sameJson, signatureOf } from './recovery-common';

import { recoveryContext, type RecoveryDeps } from './recovery-common';

export function createRecoverRecords(deps: RecoveryDeps) {
  const { db, keyring, policy } = deps;
  const { audit, verify } = recoveryContext(deps);

  /**
   * Decrypts the frozen record set of a request, sealed to the requester's one-time key.
   * Verifies here, against the registry: the signed request (signature, requester role,
   * received and authorised through authoriseRequest) and, with four-eyes on, the signed
   * approval (signature, approver role, another operator, fresh, this request, this
   * record set). The single-use grant is consumed in the transaction that writes the
   * `record_read` entries, before any value is decrypted: a retry after success, a reset,
   * a replayed approval or a foreign workflow decrypts nothing more.
   */
  return async function recoverRecords(input: {
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
        return refuse('expired', `request ${request.requestId} expired at ${String(grant.details.expiresAt)}`, request.operator);
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
  };
}
