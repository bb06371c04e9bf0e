// The ingest workflow: drain the queue in batches, each batch through four activities
// (receive → transform → persist → acknowledge), several batches in flight at once.
// Deterministic orchestration only: every side effect is in activities/ingest.ts.
import {
  ApplicationFailure,
  continueAsNew,
  defineQuery,
  proxyActivities,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError, type RetryPolicy } from '@temporalio/common';
import type { IngestActivities } from '../activities/ingest';
import { addPersistResults, type QueueDepth, type ReceivedMessage } from '../lib/types';
import { runAttributes } from '../lib/run-attributes'; // issue 12: counts as search attributes

export interface IngestOptions {
  /** Messages per batch (at most 1000; a batch also stops at a size budget). */
  batchSize?: number;
  /** Batches in flight at once. */
  concurrency?: number;
  /** Stop after receiving this many messages (default: drain the queue). */
  maxMessages?: number;
  /** Long-poll wait of each ReceiveMessage call, seconds. */
  waitTimeSeconds?: number;
  /** Concurrent ReceiveMessage calls within one batch. */
  receiveConcurrency?: number;
  /** Batches per run before continuing as new, which keeps the history bounded. */
  batchesPerRun?: number;
}

/**
 * queue_empty: two empty receives in a row, none of our batches in flight, and SQS counts
 * nothing visible or in flight. messages_unavailable: the same receives, but SQS still
 * counted messages (in flight with another receiver, e.g. a worker that died mid-batch)
 * after waiting longer than a visibility timeout; they are left for the next run.
 */
export type StopReason = 'queue_empty' | 'max_messages' | 'messages_unavailable';

export interface IngestSummary {
  received: number;
  persisted: number;
  quarantined: number;
  quarantinedByReason: Record<string, number>;
  /** Message IDs that were already in the database (redeliveries): nothing written. */
  alreadySeen: number;
  /** New rows with the same login fingerprint as an earlier row. */
  duplicateLogins: number;
  /** Deletes SQS refused; those messages come back and count as alreadySeen then. */
  ackFailed: number;
  /** What SQS still counted when the run stopped with messages_unavailable. */
  leftInQueue: QueueDepth | null;
  batches: number;
  /** Runs of this workflow ID so far (continue-as-new starts a new run). */
  runs: number;
  queueDepthAtStart: number;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number;
  stopReason: StopReason | null;
}

export interface IngestInput extends IngestOptions {
  /** Totals carried over by continue-as-new; not for callers. */
  carried?: IngestSummary;
}

export const progressQuery = defineQuery<IngestSummary>('progress');

const DEFAULTS = { batchSize: 250, concurrency: 4, waitTimeSeconds: 1, receiveConcurrency: 10, batchesPerRun: 100 };
/** Continue as new well before Temporal's history limits (50k events, 50 MB). */
const MAX_HISTORY_BYTES = 8 * 1024 * 1024;

const retry: RetryPolicy = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' };
const { queueDepth, receiveBatch } = proxyActivities<IngestActivities>({
  startToCloseTimeout: '2m',
  heartbeatTimeout: '30s',
  retry,
});
const { transformBatch, persistBatch, acknowledgeBatch } = proxyActivities<IngestActivities>({
  startToCloseTimeout: '1m',
  retry,
});

export function emptySummary(startedAt: string, queueDepthAtStart = 0): IngestSummary {
  return {
    received: 0,
    persisted: 0,
    quarantined: 0,
    quarantinedByReason: {},
    alreadySeen: 0,
    duplicateLogins: 0,
    ackFailed: 0,
    leftInQueue: null,
    batches: 0,
    runs: 1,
    queueDepthAtStart,
    startedAt,
    finishedAt: null,
    durationMs: 0,
    stopReason: null,
  };
}

function validateOptions(o: Required<Omit<IngestOptions, 'maxMessages'>> & IngestOptions): void {
  const bad = (name: string, value: unknown, range: string) => {
    throw ApplicationFailure.nonRetryable(`Ingest option ${name}=${JSON.stringify(value)} must be ${range}`, 'InvalidIngestOptions');
  };
  const intIn = (name: keyof IngestOptions, min: number, max: number) => {
    const v = o[name];
    if (v !== undefined && (!Number.isInteger(v) || v < min || v > max)) bad(name, v, `a whole number from ${min} to ${max}`);
  };
  intIn('batchSize', 1, 1000);
  intIn('concurrency', 1, 16);
  intIn('maxMessages', 1, Number.MAX_SAFE_INTEGER);
  intIn('waitTimeSeconds', 0, 20);
  intIn('receiveConcurrency', 1, 50);
  intIn('batchesPerRun', 1, 10_000);
}

export async function ingestWorkflow(input: IngestInput = {}): Promise<IngestSummary> {
  const { carried, ...options } = input;
  const o = { ...DEFAULTS, ...options };
  validateOptions(o);

  let summary: IngestSummary;
  if (carried) {
    summary = { ...carried, runs: carried.runs + 1 };
  } else {
    const depth = await queueDepth();
    summary = emptySummary(new Date().toISOString(), depth.visible + depth.inFlight);
  }
  setHandler(progressQuery, () => ({ ...summary, durationMs: Date.now() - Date.parse(summary.startedAt) }));
  const attributes = runAttributes(upsertSearchAttributes); // issue 12

  // The visibility timeout covers one batch's way through all four activities, with room for retries.
  const visibilityTimeoutSeconds = 60 + Math.ceil(o.batchSize / 5);
  let stop = null as StopReason | 'continue_as_new' | null;
  let emptyReceives = 0;
  // Messages another receiver holds (a worker killed mid-batch, say) are invisible until
  // their visibility timeout ends: wait for them that long, and a little more, at most.
  const inFlightPatienceMs = (visibilityTimeoutSeconds + 30) * 1000;
  let waitedForInFlightMs = 0;
  let checkingDepth = false;
  let batchesInFlight = 0;
  let batchesThisRun = 0;
  let requested = 0; // messages asked for by receives still under way (for maxMessages)

  const timeToContinueAsNew = () => {
    const info = workflowInfo();
    return batchesThisRun >= o.batchesPerRun || info.continueAsNewSuggested || info.historySize > MAX_HISTORY_BYTES;
  };

  async function processBatch(messages: ReceivedMessage[]): Promise<void> {
    const transformed = await transformBatch(messages);
    const persisted = await persistBatch(transformed);
    // Only after the commit: a message deleted before it is stored could be lost.
    const acked = await acknowledgeBatch(messages.map(({ messageId, receiptHandle }) => ({ messageId, receiptHandle })));
    Object.assign(summary, addPersistResults(summary, persisted));
    summary.ackFailed += acked.failed.length;
    summary.batches++;
    attributes.update(summary); // issue 12: at most every 5 s of workflow time
  }

  async function lane(): Promise<void> {
    while (!stop) {
      if (timeToContinueAsNew()) {
        stop = 'continue_as_new';
        break;
      }
      const room = o.maxMessages === undefined ? o.batchSize : Math.min(o.batchSize, o.maxMessages - summary.received - requested);
      if (room <= 0) {
        stop = 'max_messages';
        break;
      }
      requested += room;
      batchesThisRun++;
      let messages: ReceivedMessage[];
      try {
        messages = await receiveBatch({
          maxMessages: room,
          waitTimeSeconds: o.waitTimeSeconds,
          visibilityTimeoutSeconds,
          concurrency: o.receiveConcurrency,
        });
      } finally {
        requested -= room;
      }
      if (messages.length === 0) {
        batchesThisRun--;
        // Empty twice in a row with no batch of ours still being stored: drained, unless
        // SQS still counts messages in flight elsewhere.
        if (++emptyReceives >= 2 && batchesInFlight === 0 && !checkingDepth) {
          checkingDepth = true; // one lane checks and waits; the others keep receiving
          const depth = await queueDepth();
          if (depth.visible + depth.inFlight === 0) stop ??= 'queue_empty';
          else if (waitedForInFlightMs >= inFlightPatienceMs) {
            stop ??= 'messages_unavailable';
            summary.leftInQueue = depth;
          } else {
            await sleep('5s');
            waitedForInFlightMs += 5000;
          }
          emptyReceives = 0;
          checkingDepth = false;
        }
        continue;
      }
      emptyReceives = 0;
      summary.received += messages.length;
      // Once received, a batch is always carried through, even if another lane decided to stop.
      batchesInFlight++;
      try {
        await processBatch(messages);
      } finally {
        batchesInFlight--;
      }
    }
  }

  await Promise.all(Array.from({ length: o.concurrency }, lane));

  if (stop === 'continue_as_new') {
    attributes.final(summary); // issue 12
    return continueAsNew<typeof ingestWorkflow>({ ...options, carried: summary });
  }
  summary.stopReason = stop;
  summary.finishedAt = new Date().toISOString();
  summary.durationMs = Date.parse(summary.finishedAt) - Date.parse(summary.startedAt);
  attributes.final(summary); // issue 12
  return summary;
}

export interface ScheduledIngestInput extends IngestOptions {
  /** The workflow ID every ingest runs under, so that two never run at once. */
  workflowId: string;
}

export type ScheduledIngestResult = { skipped: true; reason: string } | { skipped: false; summary: IngestSummary };

/**
 * What the schedule starts every 30 minutes: the ingest under its one fixed workflow ID,
 * as a child. If an ingest is already running (started by hand, say), this run skips.
 */
export async function scheduledIngestWorkflow({ workflowId, ...options }: ScheduledIngestInput): Promise<ScheduledIngestResult> {
  try {
    const child = await startChild(ingestWorkflow, { workflowId, args: [options] });
    return { skipped: false, summary: await child.result() };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      return { skipped: true, reason: `an ingest is already running as ${workflowId}` };
    }
    throw err;
  }
}
