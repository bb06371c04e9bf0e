// Start (or attach to) the ingest workflow, show its progress, return its summary. Used by
// `client.ts ingest` and by the demo.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { Config } from '../lib/platform/config';
import type { IngestOptions } from '../lib/contract/ingest-options';
import { ingestStaticSummary } from '../lib/contract/run-attributes';
import { ingestWorkflow, progressQuery, type IngestSummary } from '../workflows/ingest';

export interface IngestRun {
  workflowId: string;
  runId: string;
  attached: boolean;
  summary: IngestSummary;
}

export function optionsFromConfig(ingest: Config['ingest']): IngestOptions {
  const { workflowId: _, ...options } = ingest;
  return options;
}

/** Whether a worker polls the task queue; a worker that has just started gets a moment to show up. */
async function hasWorkers(client: Client, config: Config): Promise<boolean> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const res = await client.workflowService.describeTaskQueue({
      namespace: config.temporal.namespace,
      taskQueue: { name: config.temporal.taskQueue },
      taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    });
    if ((res.pollers?.length ?? 0) > 0) return true;
    await sleep(300);
  }
  return false;
}

export function formatProgress(p: IngestSummary): string {
  return `received ${p.received} · persisted ${p.persisted} · quarantined ${p.quarantined} · already seen ${p.alreadySeen} · drains ${p.slices} · ${(p.durationMs / 1000).toFixed(1)} s`;
}

export interface RunIngestOptions {
  /** Every progress query's answer (at most once per pollMs); ProgressReporter (cli/progress.ts) turns it into a bar or lines. */
  onProgress?: (p: IngestSummary) => void;
  /** How often to query the run's progress (default 2 s). */
  pollMs?: number;
  /** Who started it, for the run's static summary in the Web UI. */
  startedBy?: string;
}

export async function runIngest(
  client: Client,
  config: Config,
  options: IngestOptions,
  progress: (line: string) => void = () => {},
  { onProgress, pollMs = 2000, startedBy = 'client.ts ingest' }: RunIngestOptions = {},
): Promise<IngestRun> {
  const workflowId = config.ingest.workflowId;
  if (!(await hasWorkers(client, config))) {
    progress(
      `No worker is polling task queue "${config.temporal.taskQueue}" yet: the run waits until one starts (npx ts-node worker.ts).`,
    );
  }
  // One ingest at a time: attach to the running one, if any, instead of starting a second.
  let attached = false;
  try {
    const existing = await client.workflow.getHandle(workflowId).describe();
    attached = existing.status.name === 'RUNNING';
  } catch {
    // not found: start one
  }
  const handle = await client.workflow.start(ingestWorkflow, {
    workflowId,
    taskQueue: config.temporal.taskQueue,
    args: [options],
    workflowIdConflictPolicy: 'USE_EXISTING',
    staticSummary: ingestStaticSummary(options, startedBy), // the Web UI's summary of the run
  });
  progress(attached ? `Attached to the ingest already running as ${workflowId}.` : `Started ingest ${workflowId}.`);

  // Progress every pollMs until the result is in. Each query is awaited, so none outlives the run.
  const result = handle.result();
  const settled = result.then(
    () => true,
    () => true,
  );
  for (;;) {
    const tick = new Promise<false>((resolve) => setTimeout(resolve, pollMs, false).unref());
    if (await Promise.race([settled, tick])) break;
    await handle.query(progressQuery).then(
      (p) => (onProgress ? onProgress(p) : progress(formatProgress(p))),
      () => {}, // between runs (continue-as-new) or not yet picked up by a worker
    );
  }
  const summary = await result;
  const { runId } = await handle.describe();
  return { workflowId, runId, attached, summary };
}

export function formatSummary(run: IngestRun): string {
  const s = run.summary;
  const reasons = Object.entries(s.quarantinedByReason)
    .sort((a, b) => b[1] - a[1])
    .map(([r, n]) => `    ${r}: ${n}`);
  return [
    `Ingest ${run.workflowId} finished (${s.stopReason}) in ${(s.durationMs / 1000).toFixed(1)} s over ${s.runs} run(s), ${s.slices} drain(s), ${s.commits} commit(s)`,
    `  queue depth at start:  ${s.queueDepthAtStart}`,
    `  received:              ${s.received}`,
    `  persisted (new rows):  ${s.persisted}`,
    `  quarantined:           ${s.quarantined}`,
    ...reasons,
    `  already seen (redelivered, skipped): ${s.alreadySeen}`,
    `  duplicate logins (same fingerprint): ${s.duplicateLogins}`,
    `  deletes refused by SQS:              ${s.ackFailed}`,
    ...(s.leftInQueue
      ? [
          `  left in the queue (held by another receiver past a visibility timeout): ${s.leftInQueue.visible} visible, ${s.leftInQueue.inFlight} in flight`,
        ]
      : []),
  ].join('\n');
}
