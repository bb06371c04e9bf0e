// The audit anchor's schedule runs this: one activity that writes the trail's head outside
// the database (activities/anchor.ts). Retried a few times; a run that still fails is
// visible as a failed run of the schedule, besides the worker's metric and log line.
import { proxyActivities } from '@temporalio/workflow';
import type { AnchorActivities, AnchorResult } from '../activities/anchor';

const { anchorAuditTrail } = proxyActivities<AnchorActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '2s', maximumInterval: '30s', maximumAttempts: 4 },
});

export async function auditAnchorWorkflow(): Promise<AnchorResult> {
  return anchorAuditTrail();
}
