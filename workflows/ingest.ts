// The ingest workflow: drain the queue with a few long-running drain activities at a time
// (each one time slice of receive → transform/mask → persist → acknowledge inside a worker,
// activities/ingest.ts), add up their counts, and stop by the stop rule. Only options and
// counts cross the history: no message, row or ciphertext. Deterministic orchestration only.
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
import { checkIngestOptions, drainInput, shares, withDefaults, type IngestOptions } from '../lib/contract/ingest-options';
import {
  addDrainResults,
  emptyDrainResult,
  type DrainResult,
  type IngestSummary,
  type QueueDepth,
  type StopReason,
} from '../lib/contract/types';
import { runAttributes } from '../lib/contract/run-attributes'; // issue 12: counts as search attributes

export type { IngestOptions } from '../lib/contract/ingest-options';
export type { IngestSummary, StopReason } from '../lib/contract/types';

export interface IngestInput extends IngestOptions {
  /** Totals carried over by continue-as-new; not for callers. */
  carried?: IngestSummary;
  /** How long earlier runs already waited for messages in flight elsewhere; carried like the totals. */
  carriedWaitMs?: number;
}

export const progressQuery = defineQuery<IngestSummary>('progress');

/** Continue as new well before Temporal's history limits (50k events, 50 MB). */
const MAX_HISTORY_BYTES = 8 * 1024 * 1024;

const { queueDepth } = proxyActivities<IngestActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});

export function emptySummary(startedAt: string, queueDepthAtStart = 0): IngestSummary {
  const { endedBy: _, ...counts } = emptyDrainResult();
  return {
    ...counts,
    leftInQueue: null,
    slices: 0,
    runs: 1,
    queueDepthAtStart,
    startedAt,
    finishedAt: null,
    durationMs: 0,
    stopReason: null,
  };
}

function addDrain(summary: IngestSummary, d: DrainResult): void {
  const { endedBy: _, ...sum } = addDrainResults({ ...summary, endedBy: 'empty' }, d);
  Object.assign(summary, sum);
  summary.slices++;
}

export async function ingestWorkflow(input: IngestInput = {}): Promise<IngestSummary> {
  const { carried, carriedWaitMs, ...options } = input;
  const problem = checkIngestOptions(options);
  if (problem) throw ApplicationFailure.nonRetryable(problem, 'InvalidIngestOptions');
  const o = withDefaults(options);

  // A drain heartbeats every second: one that falls silent for 10 s (its worker died) is
  // retried at once, on any worker, and its held messages come back after one short
  // visibility timeout. The start-to-close bound only catches a drain stuck past its slice
  // by far more than any commit retry takes.
  const retry: RetryPolicy = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s' };
  const { drainQueue } = proxyActivities<IngestActivities>({
    heartbeatTimeout: '10s',
    startToCloseTimeout: `${o.sliceSeconds + 3600}s`,
    retry,
  });

  let summary: IngestSummary;
  if (carried) {
    summary = { ...carried, runs: carried.runs + 1 };
  } else {
    const depth = await queueDepth();
    summary = emptySummary(new Date().toISOString(), depth.visible + depth.inFlight);
  }
  setHandler(progressQuery, () => ({ ...summary, durationMs: Date.now() - Date.parse(summary.startedAt) }));
  const attributes = runAttributes(upsertSearchAttributes); // issue 12

  // Messages another receiver holds (a worker killed mid-drain, say) are invisible until
  // their visibility timeout ends: wait for them that long, and a little more, at most.
  const inFlightPatienceMs = (o.visibilityTimeoutSeconds + 30) * 1000;
  let waitedForInFlightMs = carriedWaitMs ?? 0;
  let slicesThisRun = 0;
  let stop: StopReason | 'continue_as_new' | null = null;

  while (!stop) {
    const info = workflowInfo();
    if (slicesThisRun >= o.slicesPerRun || info.continueAsNewSuggested || info.historySize > MAX_HISTORY_BYTES) {
      stop = 'continue_as_new';
      break;
    }
    const left = o.maxMessages === undefined ? Number.MAX_SAFE_INTEGER : o.maxMessages - summary.received;
    if (left <= 0) {
      stop = 'max_messages';
      break;
    }
    // The budget left, split over the drains in flight (each gets at least one message).
    const lanes = Math.min(o.concurrency, left);
    const drains = await Promise.all(shares(left, lanes).map((budget) => drainQueue(drainInput(o, budget))));
    slicesThisRun += lanes;
    for (const d of drains) addDrain(summary, d);
    attributes.update(summary); // issue 12: at most every 5 s of workflow time
    if (!drains.every((d) => d.endedBy === 'empty')) continue;

    // Every drain found the queue empty: drained, unless SQS still counts messages in flight elsewhere.
    const depth: QueueDepth = await queueDepth();
    if (depth.visible + depth.inFlight === 0) stop = 'queue_empty';
    else if (waitedForInFlightMs >= inFlightPatienceMs) {
      stop = 'messages_unavailable';
      summary.leftInQueue = depth;
    } else if (depth.visible === 0) {
      await sleep('2s');
      waitedForInFlightMs += 2000;
    }
  }

  if (stop === 'continue_as_new') {
    attributes.final(summary); // issue 12
    return continueAsNew<typeof ingestWorkflow>({ ...options, carried: summary, carriedWaitMs: waitedForInFlightMs });
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
