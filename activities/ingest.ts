// The ingest activities. `drainQueue` is the whole pipeline for one time slice (receive →
// transform/mask → persist → acknowledge, lib/ingest/drain.ts), run in this worker's drain threads;
// message data never leaves the worker: its input and result are options and counts. It
// heartbeats its running totals, so a worker that dies is noticed within the heartbeat
// timeout and the retry (on any worker) carries the totals of the attempt before.
//
// Every input is untrusted (anyone with access to the namespace can schedule an activity):
// options are checked here too, and nothing an input says can make this read PII out.
import { Context, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Db } from '../lib/platform/db';
import { PermanentDrainError } from '../lib/ingest/drain';
import type { DrainPool } from '../lib/ingest/drain-pool';
import { checkDrainInput, type DrainInput } from '../lib/contract/ingest-options';
import { committedBy } from '../lib/ingest/persist';
import { drainRecorder, setQueueDepth } from '../lib/ingest/metrics';
import { isPermanentSqsError, getApproximateCounts } from '../lib/ingest/sqs';
import { addDrainResults, emptyDrainResult, type DrainResult, type QueueDepth } from '../lib/contract/types';

export interface IngestDeps {
  db: Db;
  sqs: SQSClient;
  queueUrl: string;
  pool: DrainPool;
}

/** How often the drain reports its totals to Temporal (the SDK sends at most one heartbeat per 0.8 × timeout). */
const HEARTBEAT_EVERY_MS = 1000;

export function createIngestActivities({ db, sqs, queueUrl, pool }: IngestDeps) {
  return {
    async queueDepth(): Promise<QueueDepth> {
      const d = await getApproximateCounts(sqs, queueUrl).catch((err: Error) => {
        if (isPermanentSqsError(err)) {
          throw ApplicationFailure.nonRetryable(
            `GetQueueAttributes failed with ${err.name}: ${err.message}. Check SQS_QUEUE_URL, AWS_REGION and the AWS credentials.`,
            err.name,
          );
        }
        throw err;
      });
      setQueueDepth(d);
      return d;
    },

    async drainQueue(input: DrainInput): Promise<DrainResult> {
      const problem = checkDrainInput(input);
      if (problem) throw ApplicationFailure.nonRetryable(problem, 'InvalidIngestOptions');
      const ctx = Context.current();
      const { workflowExecution, activityId, attempt } = ctx.info;
      const attemptId = (n: number) => `${workflowExecution?.runId ?? '-'}/${activityId}/${n}`;
      // A retry after a worker died: the totals that attempt last reported are part of this
      // one, with what the attempts before committed counted exactly from the ledger (a
      // dead attempt's last seconds of commits never reached a heartbeat).
      const before: DrainResult = isDrainResult(ctx.info.heartbeatDetails) ? ctx.info.heartbeatDetails : emptyDrainResult();
      if (attempt > 1) {
        const committed = await committedBy(
          db,
          Array.from({ length: attempt - 1 }, (_, i) => attemptId(i + 1)),
        );
        Object.assign(before, committed, {
          received: Math.max(before.received, committed.persisted + committed.quarantined + before.alreadySeen),
        });
      }
      let totals = before;
      const record = drainRecorder(before);
      const beat = setInterval(() => ctx.heartbeat(totals), HEARTBEAT_EVERY_MS);
      ctx.heartbeat(totals);
      try {
        const result = await pool.run(
          { ...input, maxMessages: Math.max(0, input.maxMessages - before.received), attemptId: attemptId(attempt) },
          ctx.cancellationSignal,
          (progress) => record((totals = addDrainResults(before, progress))),
        );
        totals = addDrainResults(before, result);
        record(totals);
        log.info('Drained', {
          received: totals.received,
          persisted: totals.persisted,
          quarantined: totals.quarantined,
          endedBy: totals.endedBy,
        });
        return totals;
      } catch (err) {
        if (err instanceof PermanentDrainError) throw ApplicationFailure.nonRetryable(err.message, err.code);
        throw err;
      } finally {
        clearInterval(beat);
      }
    },
  };
}

function isDrainResult(v: unknown): v is DrainResult {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as DrainResult).received === 'number' &&
    typeof (v as DrainResult).stageMs === 'object'
  );
}

export type IngestActivities = ReturnType<typeof createIngestActivities>;
