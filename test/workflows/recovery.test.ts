// The recovery workflow's orchestration (workflows/recovery.ts) on Temporal's time-skipping
// test server, with the recovery activities replaced by recording functions: a request
// nobody decides on expires at its deadline, and only then; a decision that arrives in time
// is what the recovery runs on, an approval or a denial. What the activities check
// themselves (signatures, roles, the audit trail) is tested on real PostgreSQL in
// test/integration/recovery*.test.ts and their error classification in
// test/unit/recovery-activities.test.ts.
import crypto from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Authorisation, DecisionVerdict, ExpiryOutcome } from '../../activities/recovery';
import type { RecoveryResult, RecoveryStatus } from '../../workflows/recovery';
import { startTestEnv, withWorker } from './env';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await startTestEnv();
});
afterAll(async () => {
  await env?.teardown();
});

const APPROVAL_TIMEOUT_MS = 60 * 60_000; // what the recovery policy gives the approver

/** The workflow only carries these to the activities; the activities (mocked here) are what verify them. */
const signedRequest = (requestId: string) => ({
  body: { type: 'pii-recovery-request', requestId, operator: 'alice' },
  signature: 'c2lnbmF0dXJl',
});

/**
 * Recovery activities that authorise with a deadline `APPROVAL_TIMEOUT_MS` after
 * authorisation, and record every call; `trail.decision` is what the audit trail holds (the
 * approvers write it there, not to the workflow).
 */
function recordingActivities(trail: { decision: 'approve' | 'deny' | null } = { decision: null }) {
  const calls: { activity: string; args: unknown[]; workflowId: string; at: number }[] = [];
  /** Each call with the test server's clock when it came (workflow time, which skips ahead). */
  const record = async (activity: string, args: unknown[]) =>
    calls.push({
      activity,
      args,
      workflowId: Context.current().info.workflowExecution!.workflowId,
      at: await env.currentTimeMs(),
    });
  let expiresAt = '';
  return {
    calls,
    expiresAt: () => expiresAt,
    activities: {
      async authoriseRequest(signed: unknown): Promise<Authorisation> {
        await record('authoriseRequest', [signed]);
        const requestId = (signed as { body: { requestId: string } }).body.requestId;
        // Workflow time: the test server's clock, which skips ahead (as the real activity's Date.now() would see it).
        expiresAt = new Date((await env.currentTimeMs()) + APPROVAL_TIMEOUT_MS).toISOString();
        return {
          ok: true,
          requestId,
          requester: 'alice',
          reason: 'support ticket about a login from an unknown device',
          ticket: 'SUP-1',
          selector: { messageIds: ['m-1'] },
          fields: ['ip'],
          records: [{ table: 'user_logins', messageId: 'm-1' }],
          recordSetHash: 'a'.repeat(64),
          requestDigest: 'b'.repeat(64),
          approvalRequired: true,
          expiresAt,
        };
      },
      async judgeDecision(...args: unknown[]): Promise<DecisionVerdict> {
        await record('judgeDecision', args);
        return trail.decision
          ? { decided: true, approver: 'bob', decision: trail.decision }
          : { decided: false, code: 'no_decision', detail: 'none yet' };
      },
      async expireRequest(...args: unknown[]): Promise<ExpiryOutcome> {
        await record('expireRequest', args);
        return trail.decision
          ? { expired: false, verdict: { decided: true, approver: 'bob', decision: trail.decision } }
          : { expired: true };
      },
      async recoverRecords(...args: unknown[]) {
        await record('recoverRecords', args);
        return { records: 1, sealed: { v: 1, ephemeralPublicKey: 'e', nonce: 'n', ciphertext: 'c' } };
      },
    },
  };
}

async function startRecovery(taskQueue: string) {
  const requestId = crypto.randomUUID();
  const handle = await env.client.workflow.start('recoveryWorkflow', {
    taskQueue,
    workflowId: `pii-recovery-${requestId}`,
    args: [signedRequest(requestId), { activityTaskQueue: taskQueue }],
  });
  // Until authorised, a decision is refused by the update's validator: wait for the state.
  for (;;) {
    const status = await handle.query<RecoveryStatus>('status');
    if (status.state !== 'verifying') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { handle, requestId };
}

test('a request nobody decides on expires at its deadline: the expiry is audited and nothing is recovered', async () => {
  const { calls, activities, expiresAt } = recordingActivities();
  const started = Date.now();
  await withWorker(env, activities, async (taskQueue) => {
    const { handle, requestId } = await startRecovery(taskQueue);
    const result = (await handle.result()) as RecoveryResult;
    expect(result).toEqual({ status: 'expired', requestId, code: 'expired', detail: `no valid decision by ${expiresAt()}` });
    expect((await handle.query<RecoveryStatus>('status')).state).toBe('expired');
    // The expiry is recorded by expireRequest, which takes nothing from the workflow: it reads the
    // request ID from the calling workflow's ID and the deadline from the audit trail itself.
    expect(calls.map((c) => c.activity)).toEqual(['authoriseRequest', 'expireRequest']);
    expect(calls[1]).toMatchObject({ activity: 'expireRequest', args: [], workflowId: `pii-recovery-${requestId}` });
    // At the deadline (in workflow time, which the test server skipped through), not before, and not much after.
    expect(calls[1].at).toBeGreaterThanOrEqual(Date.parse(expiresAt()));
    expect(calls[1].at - Date.parse(expiresAt())).toBeLessThan(60_000);
  });
  expect(Date.now() - started).toBeLessThan(30_000); // an hour of workflow time, skipped
});

test('a decision that reaches the trail before the deadline is what the recovery runs on; the request does not expire', async () => {
  const trail: { decision: 'approve' | 'deny' | null } = { decision: null };
  const { calls, activities } = recordingActivities(trail);
  await withWorker(env, activities, async (taskQueue) => {
    const { handle, requestId } = await startRecovery(taskQueue);
    await env.sleep(APPROVAL_TIMEOUT_MS - 60_000); // 59 of the 60 minutes pass
    // A nudge with nothing in the trail changes nothing; whatever it carries is ignored.
    expect(await handle.executeUpdate('decision', { args: [{ forged: true }] })).toMatchObject({ decided: false });
    trail.decision = 'approve';
    expect(await handle.executeUpdate('decision')).toEqual({ decided: true, approver: 'bob', decision: 'approve' });
    const result = (await handle.result()) as RecoveryResult;
    expect(result).toMatchObject({ status: 'completed', requestId, records: 1 });
    expect(calls.map((c) => c.activity)).toEqual(['authoriseRequest', 'judgeDecision', 'judgeDecision', 'recoverRecords']);
    // The activities take nothing from the workflow: they read the trail of the calling workflow's request.
    expect(calls.slice(1).map((c) => c.args)).toEqual([[], [], []]);
  });
});

test('a decision in the trail that no nudge announced is found at the deadline and followed', async () => {
  const { calls, activities } = recordingActivities({ decision: 'approve' });
  await withWorker(env, activities, async (taskQueue) => {
    const { handle, requestId } = await startRecovery(taskQueue);
    expect(await handle.result()).toMatchObject({ status: 'completed', requestId });
    expect(calls.map((c) => c.activity)).toEqual(['authoriseRequest', 'expireRequest', 'recoverRecords']);
  });
});

test('a denial in time ends the request as denied, without recovering anything', async () => {
  const { calls, activities } = recordingActivities({ decision: 'deny' });
  await withWorker(env, activities, async (taskQueue) => {
    const { handle, requestId } = await startRecovery(taskQueue);
    await handle.executeUpdate('decision');
    expect(await handle.result()).toEqual({ status: 'denied', requestId, code: 'denied', detail: 'denied by bob' });
    expect(calls.map((c) => c.activity)).toEqual(['authoriseRequest', 'judgeDecision']);
  });
});
