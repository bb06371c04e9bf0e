// The recovery workflow: the one door through which PII comes back. A signed request is
// verified and authorised (role, record limit) and its exact record set frozen in the audit
// trail; a second operator writes a signed approval or denial to the trail and then nudges
// this workflow with the `decision` update, which has the recovery side judge the trail and
// returns its verdict; the request expires when nobody decides in time; and only then are
// the values decrypted, sealed to the requester's one-time key. The workflow only
// orchestrates and carries no evidence: the activities read the request, the record set and
// the decision from the trail themselves, so a workflow that drops an update, or lies in
// its status, changes nothing they decide.
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
import type { DecisionVerdict, RecoveryActivities } from '../activities/recovery';
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
  requestDigest: string | null;
  records: number | null;
  state: RecoveryState;
  expiresAt: string | null;
  /** Decisions in the trail that were refused (unsigned, forged, stale, self-approval …), by code. */
  refusedApprovals: string[];
}

export type RecoveryResult =
  | { status: 'completed'; requestId: string; records: number; sealed: SealedBox }
  | { status: 'refused' | 'denied' | 'expired'; requestId: string; code: string; detail: string };

export interface RecoveryOptions {
  /** The task queue of the recovery activities (the recovery worker); default <this task queue>-pii-recovery. */
  activityTaskQueue?: string;
}

/** Tells the request that an approver wrote a decision to the trail; returns the recovery side's verdict on the trail. */
export const decisionUpdate = defineUpdate<DecisionVerdict, []>('decision');
export const statusQuery = defineQuery<RecoveryStatus>('status');

/** A refusal of an activity (an ApplicationFailure whose type is a refusal code), or null. */
function refusalOf(err: unknown): { code: string; detail: string } | null {
  const cause = err instanceof ActivityFailure ? err.cause : undefined;
  return cause instanceof ApplicationFailure && isRecoveryRefusal(cause.type)
    ? { code: cause.type, detail: cause.message }
    : null;
}

export async function recoveryWorkflow(signed: unknown, options: RecoveryOptions = {}): Promise<RecoveryResult> {
  const taskQueue = options.activityTaskQueue ?? recoveryTaskQueue(workflowInfo().taskQueue);
  const { authoriseRequest, judgeDecision, expireRequest } = proxyActivities<RecoveryActivities>({
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
    requestDigest: null,
    records: null,
    state: 'verifying',
    expiresAt: null,
    refusedApprovals: [],
  };
  setHandler(statusQuery, () => status);
  let decided: (DecisionVerdict & { decided: true }) | null = null;
  setHandler(
    decisionUpdate,
    async (): Promise<DecisionVerdict> => {
      const verdict = await judgeDecision();
      if (verdict.decided) decided ??= verdict;
      else status.refusedApprovals.push(verdict.code);
      return verdict;
    },
    {
      validator: () => {
        if (status.state !== 'awaiting_approval' || decided)
          throw new Error(`request is ${decided ? 'decided' : status.state}, not awaiting a decision`);
      },
    },
  );
  const finish = async (result: RecoveryResult, state: RecoveryState): Promise<RecoveryResult> => {
    status.state = state;
    await condition(allHandlersFinished);
    return result;
  };
  const refused = (requestId: string, r: { code: string; detail: string }) =>
    finish({ status: r.code === 'denied' ? 'denied' : 'refused', requestId, ...r }, r.code === 'denied' ? 'denied' : 'refused');

  let auth;
  try {
    auth = await authoriseRequest(signed);
  } catch (err) {
    const r = refusalOf(err);
    if (!r) throw err;
    return refused('unknown', r);
  }
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
    requestDigest: auth.requestDigest,
    records: auth.records.length,
    expiresAt: auth.expiresAt,
  });
  const { requestId } = auth;

  try {
    if (auth.approvalRequired) {
      status.state = 'awaiting_approval';
      if (!(await condition(() => decided !== null, Math.max(0, Date.parse(auth.expiresAt) - Date.now())))) {
        // The deadline passed with no nudge: the trail may still hold a decision made in time.
        const outcome = await expireRequest();
        if (outcome.expired) {
          status.state = 'expired';
          return finish(
            { status: 'expired', requestId, code: 'expired', detail: `no valid decision by ${auth.expiresAt}` },
            'expired',
          );
        }
        decided ??= outcome.verdict;
      }
      if (decided!.decision === 'deny')
        return finish({ status: 'denied', requestId, code: 'denied', detail: `denied by ${decided!.approver}` }, 'denied');
    }
    status.state = 'recovering';
    const result = await recoverRecords();
    return finish({ status: 'completed', requestId, records: result.records, sealed: result.sealed }, 'completed');
  } catch (err) {
    const r = refusalOf(err);
    if (!r) throw err;
    return refused(requestId, r);
  }
}
