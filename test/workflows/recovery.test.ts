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
import type { ApprovalVerdict, Authorisation } from '../../activities/recovery';
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
const signedDecision = (requestId: string, decision: 'approve' | 'deny') => ({
  body: { type: 'pii-recovery-approval', requestId, operator: 'bob', decision },
  signature: 'c2lnbmF0dXJl',
});

/** Recovery activities that authorise with a deadline `APPROVAL_TIMEOUT_MS` after authorisation, and record every call. */
function recordingActivities() {
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
          approvalRequired: true,
          expiresAt,
        };
      },
      async verifyApproval(signed: unknown): Promise<ApprovalVerdict> {
        await record('verifyApproval', [signed]);
        return { ok: true, approver: 'bob', decision: (signed as { body: { decision: 'approve' | 'deny' } }).body.decision };
      },
      async expireRequest(...args: unknown[]): Promise<void> {
        await record('expireRequest', args);
      },
      async recoverRecords(input: unknown) {
        await record('recoverRecords', [input]);
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

test('a decision that arrives before the deadline is what the recovery runs on; the request does not expire', async () => {
  const { calls, activities } = recordingActivities();
  await withWorker(env, activities, async (taskQueue) => {
    const { handle, requestId } = await startRecovery(taskQueue);
    await env.sleep(APPROVAL_TIMEOUT_MS - 60_000); // 59 of the 60 minutes pass
    const approval = signedDecision(requestId, 'approve');
    expect(await handle.executeUpdate('decision', { args: [approval] })).toEqual({
      ok: true,
      approver: 'bob',
      decision: 'approve',
    });
    const result = (await handle.result()) as RecoveryResult;
    expect(result).toMatchObject({ status: 'completed', requestId, records: 1 });
    expect(calls.map((c) => c.activity)).toEqual(['authoriseRequest', 'verifyApproval', 'recoverRecords']);
    // The recovery gets the signed request and the signed approval as they came in, for its own checks.
    expect(calls[2].args).toEqual([{ signedRequest: signedRequest(requestId), signedApproval: approval }]);
  });
});

test('a denial in time ends the request as denied, without recovering anything', async () => {
  const { calls, activities } = recordingActivities();
  await withWorker(env, activities, async (taskQueue) => {
    const { handle, requestId } = await startRecovery(taskQueue);
    await handle.executeUpdate('decision', { args: [signedDecision(requestId, 'deny')] });
    expect(await handle.result()).toEqual({ status: 'denied', requestId, code: 'denied', detail: 'denied by bob' });
    expect(calls.map((c) => c.activity)).toEqual(['authoriseRequest', 'verifyApproval']);
  });
});
