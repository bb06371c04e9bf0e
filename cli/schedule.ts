// The Temporal schedule that runs the ingest (every 30 minutes unless told otherwise).
import { ScheduleOverlapPolicy, type Client, type ScheduleDescription } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import type { Config } from '../lib/platform/config';
import { optionsFromConfig } from './ingest-run';
import { scheduledIngestWorkflow } from '../workflows/ingest';
import {
  AUDIT_ANCHOR_SCHEDULE_ID,
  AUDIT_ANCHOR_WORKFLOW_ID,
  DEFAULT_AUDIT_ANCHOR_INTERVAL,
  DEFAULT_SCHEDULE_INTERVAL,
  SCHEDULE_ID,
  scheduledIngestWorkflowId,
} from '../lib/contract/names';
import { auditAnchorWorkflow } from '../workflows/anchor';

export async function createSchedule(client: Client, config: Config, every: Duration = DEFAULT_SCHEDULE_INTERVAL): Promise<void> {
  await client.schedule.create({
    scheduleId: SCHEDULE_ID,
    spec: { intervals: [{ every }] },
    action: {
      type: 'startWorkflow',
      workflowType: scheduledIngestWorkflow,
      workflowId: scheduledIngestWorkflowId(config.ingest.workflowId),
      taskQueue: config.temporal.taskQueue,
      args: [{ workflowId: config.ingest.workflowId, ...optionsFromConfig(config.ingest) }],
      staticSummary: `Scheduled ingest: starts ${config.ingest.workflowId} unless one is running`,
    },
    // A run still going when the next is due: skip the next (never two drains at once).
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '5m' },
  });
}

/** The schedule beside the ingest's that anchors the audit trail's head (activities/anchor.ts) every few minutes. */
export async function createAnchorSchedule(
  client: Client,
  config: Config,
  every: Duration = DEFAULT_AUDIT_ANCHOR_INTERVAL,
): Promise<void> {
  await client.schedule.create({
    scheduleId: AUDIT_ANCHOR_SCHEDULE_ID,
    spec: { intervals: [{ every }] },
    action: {
      type: 'startWorkflow',
      workflowType: auditAnchorWorkflow,
      workflowId: AUDIT_ANCHOR_WORKFLOW_ID,
      taskQueue: config.temporal.taskQueue,
      args: [],
      staticSummary: 'Anchors the PII audit trail head outside the database',
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '5m' },
  });
}

/** The description as plain JSON for `schedule describe --json`. */
export function scheduleJson(d: ScheduleDescription) {
  return {
    scheduleId: d.scheduleId,
    intervalsSeconds: d.spec.intervals?.map((i) => Number(i.every) / 1000) ?? [],
    overlap: d.policies.overlap,
    paused: d.state.paused,
    note: d.state.note ?? null,
    nextActionTimes: d.info.nextActionTimes.map((t) => t.toISOString()),
    numActionsTaken: d.info.numActionsTaken,
    numActionsSkippedOverlap: d.info.numActionsSkippedOverlap,
    recentActions: d.info.recentActions.map((a) => ({
      takenAt: a.takenAt.toISOString(),
      workflowId: a.action.workflow.workflowId,
      runId: a.action.workflow.firstExecutionRunId,
    })),
  };
}

export function describeSchedule(d: ScheduleDescription): string {
  const every = d.spec.intervals?.map((i) => `every ${Number(i.every) / 60000} min`).join(', ') ?? '(custom spec)';
  const recent = d.info.recentActions.slice(-5).map((a) => `    ${a.takenAt.toISOString()} → ${a.action.workflow.workflowId}`);
  return [
    `Schedule ${d.scheduleId}: ${every}, overlap ${d.policies.overlap}, ${d.state.paused ? `PAUSED (${d.state.note ?? ''})` : 'active'}`,
    `  next runs: ${
      d.info.nextActionTimes
        .slice(0, 3)
        .map((t) => t.toISOString())
        .join(', ') || '(none)'
    }`,
    `  runs so far: ${d.info.numActionsTaken}, skipped for overlap: ${d.info.numActionsSkippedOverlap}`,
    ...(recent.length ? ['  recent:', ...recent] : []),
  ].join('\n');
}
