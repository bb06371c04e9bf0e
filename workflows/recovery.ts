// The recovery workflow: the one door through which PII comes back. A signed request is
// verified, authorised (role, record limit), approved by a second operator (four-eyes,
// signed approvals arriving as signals, with expiry), and only then are the values
// decrypted, sealed to the requester's one-time key. Every step is audited by the
// activities; this file only decides.
import { condition, defineQuery, defineSignal, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { RecoveryActivities } from '../activities/recovery';
import type { SealedBox } from '../lib/sealed';

export type RecoveryState = 'verifying' | 'awaiting_approval' | 'recovering' | 'completed' | 'refused' | 'denied' | 'expired';

export interface RecoveryStatus {
  requestId: string | null;
  requester: string | null;
  reason: string | null;
  ticket: string | null;
  records: number | null;
  state: RecoveryState;
  expiresAt: string | null;
  /** Approvals that arrived but were refused (unsigned, forged, stale, self-approval …), by code. */
  refusedApprovals: string[];
}

export type RecoveryResult =
  | { status: 'completed'; requestId: string; records: number; sealed: SealedBox }
  | { status: 'refused' | 'denied' | 'expired'; requestId: string; code: string; detail: string };

/** Carries a signed approval or denial (Signed<ApprovalBody>); anything else is refused and audited. */
export const decisionSignal = defineSignal<[unknown]>('decision');
export const statusQuery = defineQuery<RecoveryStatus>('status');

const { verifyRecoveryRequest, countRecords, verifyApproval, recordDecision } = proxyActivities<RecoveryActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '30s' },
});
const { recoverRecords } = proxyActivities<RecoveryActivities>({
  startToCloseTimeout: '2m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5 },
});

export async function recoveryWorkflow(signed: unknown): Promise<RecoveryResult> {
  const status: RecoveryStatus = { requestId: null, requester: null, reason: null, ticket: null, records: null, state: 'verifying', expiresAt: null, refusedApprovals: [] };
  setHandler(statusQuery, () => status);
  const inbox: unknown[] = [];
  setHandler(decisionSignal, (approval) => void inbox.push(approval));

  const { workflowId, runId } = workflowInfo();
  const verified = await verifyRecoveryRequest(signed, { workflowId, runId });
  if (!verified.ok) {
    status.state = 'refused';
    return { status: 'refused', requestId: verified.requestId, code: verified.code, detail: verified.detail };
  }
  const { request, policy } = verified;
  Object.assign(status, { requestId: request.requestId, requester: request.operator, reason: request.reason, ticket: request.ticket });
  const end = async (state: 'refused' | 'denied' | 'expired', code: string, detail: string, audit = true): Promise<RecoveryResult> => {
    status.state = state;
    if (audit) await recordDecision({ requestId: request.requestId, event: state === 'expired' ? 'expired' : 'denied', actor: null, details: { code, detail } });
    return { status: state, requestId: request.requestId, code, detail };
  };

  if (!verified.requesterRoles.includes('pii-requester')) {
    return end('refused', 'not_a_requester', `${request.operator} does not hold pii-requester`);
  }
  const records = await countRecords(request.selector);
  status.records = records;
  if (records === 0) return end('refused', 'no_records', 'the selector matches no record');
  if (records > policy.maxRecords) return end('refused', 'too_many_records', `the selector matches more than ${policy.maxRecords} records`);
  await recordDecision({ requestId: request.requestId, event: 'authorised', actor: null, details: { records, approvalRequired: policy.requireApproval } });

  if (policy.requireApproval) {
    status.state = 'awaiting_approval';
    const deadline = Date.now() + policy.approvalTimeoutSeconds * 1000;
    status.expiresAt = new Date(deadline).toISOString();
    for (;;) {
      if (!(await condition(() => inbox.length > 0, Math.max(0, deadline - Date.now())))) {
        return end('expired', 'expired', `no valid decision within ${policy.approvalTimeoutSeconds} s`);
      }
      const decision = await verifyApproval(inbox.shift(), { requestId: request.requestId, requester: request.operator });
      if (!decision.ok) {
        status.refusedApprovals.push(decision.code);
        continue;
      }
      if (decision.decision === 'deny') return end('denied', 'denied', `denied by ${decision.approver}`, false);
      break;
    }
  }

  status.state = 'recovering';
  try {
    const result = await recoverRecords({ request });
    status.state = 'completed';
    return { status: 'completed', requestId: request.requestId, records: result.records, sealed: result.sealed };
  } catch (err) {
    await recordDecision({ requestId: request.requestId, event: 'failed', actor: null, details: { error: (err as Error).message.slice(0, 200) } });
    throw err;
  }
}
