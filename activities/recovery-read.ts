// The decrypting recovery activity, `recoverRecords`: the one place PII comes back out of the
// database. It takes no input at all: the request ID is the calling workflow's, and
// everything else comes from the audit trail, verified here against the operator registry
// (lib/recovery/trail.ts): the signed request, the record set the recovery side froze
// (checked again: every record still matches the selector, within the limit and the
// expiry) and, with four-eyes on, the signed approval that counts (a denial first is
// final). The single-use grant is consumed in the transaction that writes the
// `record_read` entries, under the chain's lock, before a value is decrypted; values leave
// only sealed to the requester's one-time key. The other recovery activities are in
// activities/recovery.ts.
import { log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { decryptRecords, recordsOutsideSelector } from '../lib/recovery/records';
import { consumeGrant } from '../lib/recovery/grant';
import { decisionOf } from '../lib/recovery/trail';
import { sealTo, type SealedBox } from '../lib/pii/sealed';
import type { RecoveryRefusal } from '../lib/contract/recovery';
import { caller, guarded, readTrail, refusal, signatureOf, recoveryContext, type RecoveryDeps } from './recovery-common';

export function createRecoverRecords(deps: RecoveryDeps) {
  const { db, keyring, policy } = deps;
  const { audit, registry, now } = recoveryContext(deps);

  /**
   * Decrypts the frozen record set of the calling workflow's request, sealed to the
   * requester's one-time key, if and only if the trail says so.
   */
  return async function recoverRecords(): Promise<{ sealed: SealedBox; records: number }> {
    return guarded('recoverRecords', async () => {
      const ctx = caller();
      const requestId = ctx.requestId ?? 'unknown';
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
      if (!ctx.requestId) return refuse('not_a_recovery', 'not called by a recovery workflow');

      const reg = registry();
      const read = await readTrail(db, requestId, reg, policy);
      if (!read.ok) return refuse(read.code, read.detail);
      const { trail } = read;
      const requester = trail.request.operator;
      if (!trail.authorised) return refuse('not_authorised', `request ${requestId} was never authorised`, requester);
      const { records, recordSetHash, expiresAt } = trail.authorised;

      const outside = await recordsOutsideSelector(db, trail.request.selector, records);
      if (outside.length)
        return refuse(
          'forged',
          `the frozen record set names ${outside.length} record(s) the signed selector does not match (first: ${outside[0].table}:${outside[0].messageId})`,
          requester,
        );

      const decision = decisionOf(read.entries, trail, reg, policy);
      if (decision.decided && decision.decision === 'deny')
        return refuse('denied', `denied by ${decision.approver} (audit entry ${decision.entry.id})`, requester);
      if (policy.requireApproval && !decision.decided)
        return refuse('not_authorised', `the trail holds no approval of request ${requestId} that counts`, requester);
      // An approval is used at once: the request's expiry, or a short while after a late approval.
      const deadline = Math.max(
        Date.parse(expiresAt),
        decision.decided ? Date.parse(decision.entry.at) + policy.signatureMaxAgeSeconds * 1000 : 0,
      );
      if (now() > deadline)
        return refuse('expired', `request ${requestId} expired at ${new Date(deadline).toISOString()}`, requester);
      const approval = decision.decided
        ? {
            approver: decision.approver,
            approval: decision.approval,
            decisionEntry: decision.entry.id,
            ...signatureOf({ signature: decision.entry.details.signature }, reg.byName.get(decision.approver)!),
          }
        : { approvalRequired: false };

      // The grant is consumed, and the trail written, in one transaction under the chain's lock,
      // before a single value is decrypted; a denial or expiry that got there first wins.
      const consumed = await consumeGrant(db, {
        requestId,
        requester,
        recordSetHash,
        records,
        fields: trail.request.fields,
        details: { ...approval, runId: ctx.runId },
        stillValid: (entries) => {
          if (entries.some((e) => e.event === 'expired')) return 'expired';
          const latest = decisionOf(entries, trail, reg, policy);
          return latest.decided && latest.decision === 'deny' ? 'denied' : null;
        },
      });
      if (consumed !== 'consumed') {
        if (consumed === 'spent')
          return refuse(
            'grant_consumed',
            `request ${requestId} was already carried out: a grant is good for one recovery`,
            requester,
          );
        return refuse(consumed, `request ${requestId} was ${consumed} before its grant was used`, requester);
      }

      try {
        const values = await decryptRecords(db, keyring, records, trail.request.fields);
        const sealed = sealTo(trail.request.recipientPublicKey, JSON.stringify(values), requestId);
        await audit({ requestId, event: 'completed', actor: requester, details: { records: records.length } });
        log.info('Recovery completed', { requestId, records: records.length });
        return { sealed, records: records.length };
      } catch (err) {
        // The grant is spent either way: a new request is needed.
        await audit({
          requestId,
          event: 'failed',
          actor: null,
          details: { error: String((err as Error)?.message ?? err).slice(0, 200) },
        }).catch(() => {});
        throw ApplicationFailure.nonRetryable(
          `Recovery of request ${requestId} failed after its grant was consumed; make a new request`,
          'recovery_failed',
        );
      }
    });
  };
}
