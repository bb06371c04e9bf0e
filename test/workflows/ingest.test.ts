// The ingest workflow's rules (workflows/ingest.ts) on Temporal's time-skipping test server,
// with the activities replaced by scripted functions: when it stops and why, how long it
// waits for messages in flight elsewhere, the message budget, continue-as-new with the
// totals carried over, refused options, and the scheduled run's skip. The real drain is
// tested end to end in test/integration/ingest.test.ts.
import { Context } from '@temporalio/activity';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { DrainResult, QueueDepth } from '../../lib/contract/types';
import type { IngestSummary, ScheduledIngestResult } from '../../workflows/ingest';
import { startTestEnv, withWorker } from './env';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await startTestEnv();
});
afterAll(async () => {
  await env?.teardown();
});

type DrainInputSeen = { maxMessages: number; runId: string };

/** A drain's result: `received` messages, 70% persisted and 30% quarantined as invalid_ip, ended by `endedBy`. */
function drained(received: number, endedBy: DrainResult['endedBy']): DrainResult {
  const quarantined = Math.floor(received * 0.3);
  return {
    received,
    persisted: received - quarantined,
    quarantined,
    quarantinedByReason: quarantined ? { invalid_ip: quarantined } : {},
    alreadySeen: 1,
    duplicateLogins: 0,
    ackFailed: 0,
    visibilityExtended: 0,
    receiveErrors: 0,
    persistRetries: 0,
    commits: 1,
    stageMs: { receive: 5, transform: 1, persist: 3, acknowledge: 2 },
    endedBy,
  };
}

/**
 * Activities that play a script: `drains[i]` answers the i-th drainQueue call (the last one
 * repeats), `depths[i]` the i-th queueDepth call (the last one repeats). Every call is recorded.
 */
function scripted(drains: Array<(input: { maxMessages: number }) => DrainResult>, depths: QueueDepth[]) {
  const calls = { drains: [] as DrainInputSeen[], depths: 0 };
  return {
    calls,
    activities: {
      async drainQueue(input: { maxMessages: number }): Promise<DrainResult> {
        const i = calls.drains.length;
        calls.drains.push({ maxMessages: input.maxMessages, runId: Context.current().info.workflowExecution!.runId });
        return drains[Math.min(i, drains.length - 1)](input);
      },
      async queueDepth(): Promise<QueueDepth> {
        return depths[Math.min(calls.depths++, depths.length - 1)];
      },
    },
  };
}

const run = (taskQueue: string, args: unknown[], workflowId = `ingest-${Date.now()}-${Math.random()}`) =>
  env.client.workflow.execute('ingestWorkflow', { taskQueue, workflowId, args }) as Promise<IngestSummary>;

test('stops with queue_empty only once every drain of a round ended empty and SQS counts nothing visible or in flight', async () => {
  const { calls, activities } = scripted(
    [
      () => drained(100, 'empty'),
      () => drained(100, 'time'), // round 1: one drain still had messages: drain on
      () => drained(0, 'empty'),
      () => drained(0, 'empty'), // round 2: both empty, but SQS still counts 5 visible: drain on
      () => drained(5, 'empty'),
      () => drained(0, 'empty'), // round 3: both empty and SQS counts nothing: done
    ],
    [
      { visible: 205, inFlight: 0 },
      { visible: 5, inFlight: 0 },
      { visible: 0, inFlight: 0 },
    ],
  );
  const summary = await withWorker(env, activities, (tq) => run(tq, [{ concurrency: 2 }]));
  expect(summary).toMatchObject({
    stopReason: 'queue_empty',
    slices: 6,
    runs: 1,
    received: 205,
    queueDepthAtStart: 205,
    leftInQueue: null,
  });
  expect(calls.drains).toHaveLength(6);
  // A depth check at the start and after each round whose drains all ended empty: not after round 1.
  expect(calls.depths).toBe(3);
});

test('waits in 2 s rounds for messages in flight elsewhere, a visibility timeout and 30 s at most, then ends messages_unavailable', async () => {
  const { calls, activities } = scripted([() => drained(0, 'empty')], [{ visible: 0, inFlight: 10 }]);
  const workflowId = `ingest-in-flight-${Date.now()}`;
  const started = Date.now();
  const summary = await withWorker(env, activities, (tq) =>
    run(tq, [{ concurrency: 1, visibilityTimeoutSeconds: 30 }], workflowId),
  );
  const realMs = Date.now() - started;
  expect(summary).toMatchObject({ stopReason: 'messages_unavailable', leftInQueue: { visible: 0, inFlight: 10 }, received: 0 });
  // 30 s visibility + 30 s = 60 s of patience: 30 sleeps of 2 s, each followed by a drain and a depth check.
  const events = (await env.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const timers = events
    .filter((e) => e.timerStartedEventAttributes)
    .map((e) => Number(e.timerStartedEventAttributes!.startToFireTimeout!.seconds));
  expect(timers).toEqual(Array(30).fill(2));
  expect(calls.drains).toHaveLength(31);
  expect(calls.depths).toBe(1 + 31);
  expect(summary.durationMs).toBeGreaterThanOrEqual(60_000); // in workflow time ...
  expect(realMs).toBeLessThan(30_000); // ... which the test server skipped
});

test('the patience for messages in flight is carried across continue-as-new, so a small slicesPerRun still ends messages_unavailable', async () => {
  // With the patience reset in every run, each run would drain twice and continue as new, for
  // ever: the script refuses a 40th drain (31 are needed), so such a loop fails here at once.
  const { calls, activities } = scripted(
    [
      ...Array.from({ length: 39 }, () => () => drained(0, 'empty')),
      () => {
        throw ApplicationFailure.nonRetryable('a 40th drain: the in-flight patience was not carried over');
      },
    ],
    [{ visible: 0, inFlight: 10 }],
  );
  const summary = await withWorker(env, activities, (tq) =>
    run(tq, [{ concurrency: 1, visibilityTimeoutSeconds: 30, slicesPerRun: 2 }]),
  );
  expect(summary).toMatchObject({ stopReason: 'messages_unavailable', leftInQueue: { visible: 0, inFlight: 10 } });
  expect(calls.drains).toHaveLength(31);
  expect(summary.runs).toBe(16); // 2 drains a run: 15 runs continued as new, the 16th stopped
});

test('messages that come back within the patience are drained, and the run ends queue_empty', async () => {
  // Held elsewhere for five depth checks (10 s), then visible again: the next drain gets them.
  const depths: QueueDepth[] = [
    { visible: 0, inFlight: 10 },
    ...Array(5).fill({ visible: 0, inFlight: 10 }),
    { visible: 10, inFlight: 0 },
    { visible: 0, inFlight: 0 },
  ];
  const drains = [...Array(6).fill(() => drained(0, 'empty')), () => drained(10, 'empty')];
  const { activities } = scripted(drains, depths);
  const summary = await withWorker(env, activities, (tq) => run(tq, [{ concurrency: 1 }]));
  expect(summary).toMatchObject({ stopReason: 'queue_empty', received: 10, leftInQueue: null });
});

test('stops at maxMessages, splitting what is left of the budget over the drains in flight', async () => {
  const { calls, activities } = scripted(
    [(input) => drained(Math.min(100, input.maxMessages), input.maxMessages <= 100 ? 'budget' : 'time')],
    [{ visible: 1000, inFlight: 0 }],
  );
  const summary = await withWorker(env, activities, (tq) => run(tq, [{ concurrency: 2, maxMessages: 250 }]));
  expect(summary).toMatchObject({ stopReason: 'max_messages', received: 250, slices: 4 });
  expect(calls.drains.map((d) => d.maxMessages)).toEqual([125, 125, 25, 25]);
});

test('continues as new after slicesPerRun drains, carrying every total over exactly', async () => {
  // Seven drains that ran out of time, then one that found the queue empty; SQS then counts nothing.
  const drains = [...Array(7).fill(() => drained(10, 'time')), () => drained(0, 'empty')];
  const { calls, activities } = scripted(drains, [
    { visible: 70, inFlight: 0 },
    { visible: 0, inFlight: 0 },
  ]);
  const summary = await withWorker(env, activities, (tq) => run(tq, [{ concurrency: 1, slicesPerRun: 3 }]));
  expect(summary).toMatchObject({
    stopReason: 'queue_empty',
    runs: 3,
    slices: 8,
    received: 70,
    persisted: 49,
    quarantined: 21,
    quarantinedByReason: { invalid_ip: 21 },
    alreadySeen: 8,
    commits: 8,
    stageMs: { receive: 40, transform: 8, persist: 24, acknowledge: 16 },
    queueDepthAtStart: 70, // from the first run's check; a continued run does not check again
  });
  // Three drains in each of the first two runs, two in the last.
  const perRun = [...new Set(calls.drains.map((d) => d.runId))].map(
    (runId) => calls.drains.filter((d) => d.runId === runId).length,
  );
  expect(perRun).toEqual([3, 3, 2]);
  expect(calls.depths).toBe(2);
});

test('refuses invalid options at once, non-retryably, without touching SQS', async () => {
  const { calls, activities } = scripted([() => drained(0, 'empty')], [{ visible: 0, inFlight: 0 }]);
  const failure = await withWorker(env, activities, (tq) =>
    env.client.workflow
      .execute('ingestWorkflow', {
        taskQueue: tq,
        workflowId: `ingest-bad-${Date.now()}`,
        args: [{ batchSize: 0 }],
        retry: { maximumAttempts: 3, initialInterval: '1s' },
      })
      .then(
        () => null,
        (err: unknown) => err,
      ),
  );
  expect(failure).toBeInstanceOf(WorkflowFailedError);
  const cause = (failure as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  expect(cause).toMatchObject({
    type: 'InvalidIngestOptions',
    nonRetryable: true,
    message: 'Ingest option batchSize=0 must be a whole number from 1 to 5000',
  });
  expect(calls).toEqual({ drains: [], depths: 0 });
});

test('the scheduled run skips while an ingest with that workflow ID is running, and runs it otherwise', async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const activities = {
    async queueDepth(): Promise<QueueDepth> {
      return { visible: 0, inFlight: 0 };
    },
    async drainQueue(): Promise<DrainResult> {
      const ctx = Context.current();
      const beat = setInterval(() => ctx.heartbeat(), 200);
      await released.finally(() => clearInterval(beat));
      return drained(3, 'empty');
    },
  };
  const workflowId = `ingest-scheduled-${Date.now()}`;
  await withWorker(env, activities, async (taskQueue) => {
    const running = await env.client.workflow.start('ingestWorkflow', { taskQueue, workflowId, args: [{ concurrency: 1 }] });
    const skipped = (await env.client.workflow.execute('scheduledIngestWorkflow', {
      taskQueue,
      workflowId: `${workflowId}-tick-1`,
      args: [{ workflowId, concurrency: 1 }],
    })) as ScheduledIngestResult;
    expect(skipped).toEqual({ skipped: true, reason: `an ingest is already running as ${workflowId}` });
    release();
    expect(await running.result()).toMatchObject({ stopReason: 'queue_empty', received: 3 });

    const ran = (await env.client.workflow.execute('scheduledIngestWorkflow', {
      taskQueue,
      workflowId: `${workflowId}-tick-2`,
      args: [{ workflowId, concurrency: 1 }],
    })) as ScheduledIngestResult;
    expect(ran).toMatchObject({ skipped: false, summary: { stopReason: 'queue_empty', received: 3 } });
  });
});
