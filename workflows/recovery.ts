// The recovery workflow: the one door through which PII comes back. A signed request is
// verified and authorised (role, record limit) and its exact record set frozen; a second
// operator approves or denies it with a signed decision sent as a Workflow Update (the
// verdict goes back to the caller), with expiry; and only then are the values decrypted,
// sealed to the requester's one-time key. The workflow only orchestrates: every check that
// matters is made again by the activities, on the recovery task queue, which trust no input.
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import {
  allHandlersFinished,
  condition,
  defineQuery,
  defineUpdate,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { ApprovalVerdict, RecoveryActivities } from '../activities/recovery';
import type { RecordRef } from '../lib/recovery/records';
import type { SealedBox } from '../lib/pii/sealed';
import { recoveryTaskQueue } from '../lib/contract/names';
import { isRecoveryRefusal } from '../lib/contract/recovery';

export type RecoveryState = 'verifying' | 'awaiting_approval' | 'recovering' | 'completed' | 'refused' | 'denied' | 'expired';

export interface RecoveryStatus {
  requestId: string | null;
  requester: string | null;
  reason: string | null;
  ticket: string | null;
  /** What the approver approves: the selector, the fields, the frozen records and their hash (lib/recovery/records.ts recordSetHash). */
  selector: unknown;
  fields: string[] | null;
  recordSet: RecordRef[] | null;
  recordSetHash: string | null;
  records: number | null;
  state: RecoveryState;
  expiresAt: string | null;
  /** Decisions that arrived but were refused (unsigned, forged, stale, self-approval …), by code. */
  refusedApprovals: string[];
}

export type RecoveryResult =
  | { status: 'completed'; requestId: string; records: number; sealed: SealedBox }
  | { status: 'refused' | 'denied' | 'expired'; requestId: string; code: string; detail: string };

export interface RecoveryOptions {
  /** The task queue of the recovery activities (the recovery worker); default <this task queue>-pii-recovery. */
  activityTaskQueue?: string;
}

/** Carries a signed approval or denial (Signed<ApprovalBody>); returns the verdict. Refused unless the request awaits a decision. */
export const decisionUpdate = defineUpdate<ApprovalVerdict, [unknown]>('decision');
export const statusQuery = defineQuery<RecoveryStatus>('status');

export async function recoveryWorkflow(signed: unknown, options: RecoveryOptions = {}): Promise<RecoveryResult> {
  const taskQueue = options.activityTaskQueue ?? recoveryTaskQueue(workflowInfo().taskQueue);
  const { authoriseRequest, verifyApproval, expireRequest } = proxyActivities<RecoveryActivities>({
    taskQueue,
    startToCloseTimeout: '30s',
    retry: { initialInterval: '1s', maximumInterval: '30s' },
  });
  const { recoverRecords } = proxyActivities<RecoveryActivities>({
    taskQueue,
    startToCloseTimeout: '2m',
    retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5 },
  });

  const status: RecoveryStatus = {
    requestId: null,
    requester: null,
    reason: null,
    ticket: null,
    selector: null,
    fields: null,
    recordSet: null,
    recordSetHash: null,
    records: null,
    state: 'verifying',
    expiresAt: null,
    refusedApprovals: [],
  };
  setHandler(statusQuery, () => status);
  const made: { value: { decision: 'approve' | 'deny'; approver: string; signed: unknown } | null } = { value: null };
  setHandler(
    decisionUpdate,
    async (approval: unknown): Promise<ApprovalVerdict> => {
      const verdict = await verifyApproval(approval);
      if (!verdict.ok) status.refusedApprovals.push(verdict.code);
      else if (made.value) return { ok: false, code: 'already_decided', detail: `${made.value.approver} decided first` };
      else made.value = { decision: verdict.decision, approver: verdict.approver, signed: approval };
      return verdict;
    },
    {
      validator: (_approval: unknown) => {
        if (status.state !== 'awaiting_approval' || made.value)
          throw new Error(`request is ${made.value ? 'decided' : status.state}, not awaiting a decision`);
      },
    },
  );
  const finish = async (result: RecoveryResult, state: RecoveryState): Promise<RecoveryResult> => {
    status.state = state;
    await condition(allHandlersFinished);
    return result;
  };

  const auth = await authoriseRequest(signed);
  if (!auth.ok) return finish({ status: 'refused', requestId: auth.requestId, code: auth.code, detail: auth.detail }, 'refused');
  Object.assign(status, {
    requestId: auth.requestId,
    requester: auth.requester,
    reason: auth.reason,
    ticket: auth.ticket,
    selector: auth.selector,
    fields: auth.fields,
    recordSet: auth.records,
    recordSetHash: auth.recordSetHash,
    records: auth.records.length,
    expiresAt: auth.expiresAt,
  });
  const { requestId } = auth;

  if (auth.approvalRequired) {
    status.state = 'awaiting_approval';
    if (!(await condition(() => made.value !== null, Math.max(0, Date.parse(auth.expiresAt) - Date.now())))) {
      status.state = 'expired';
      await expireRequest();
      return finish(
        { status: 'expired', requestId, code: 'expired', detail: `no valid decision by ${auth.expiresAt}` },
        'expired',
      );
    }
    if (made.value!.decision === 'deny')
      return finish({ status: 'denied', requestId, code: 'denied', detail: `denied by ${made.value!.approver}` }, 'denied');
  }

  status.state = 'recovering';
  try {
    const result = await recoverRecords({ signedRequest: signed, signedApproval: made.value?.signed ?? null });
    return finish({ status: 'completed', requestId, records: result.records, sealed: result.sealed }, 'completed');
  } catch (err) {
    const cause = err instanceof ActivityFailure ? err.cause : undefined;
    if (cause instanceof ApplicationFailure && isRecoveryRefusal(cause.type)) {
      return finish({ status: 'refused', requestId, code: cause.type, detail: cause.message }, 'refused');
    }
    throw err;
  }
}
