// The names the processes agree on: task queues, workflow IDs and the schedule's ID. The
// worker polls by them, the CLI starts and finds runs by them, configuration gives them
// their defaults and the workflows and activities check against them, so each is spelled
// here once. Pure and workflow-safe.

/** The task queue of the ingest and every other workflow (TEMPORAL_TASK_QUEUE's default). */
export const DEFAULT_TASK_QUEUE = 'login-ingest';

/**
 * The task queue of the recovery activities, the only ones that decrypt PII, polled by
 * recovery-worker.ts alone (TEMPORAL_RECOVERY_TASK_QUEUE's default).
 */
export const recoveryTaskQueue = (taskQueue: string): string => `${taskQueue}-pii-recovery`;

/** The one workflow ID every ingest runs under, so that two never run at once (INGEST_WORKFLOW_ID's default). */
export const DEFAULT_INGEST_WORKFLOW_ID = 'login-ingest';

/** The Temporal schedule that starts the ingest (`client.ts schedule …`, deploy/k8s/jobs.yaml). */
export const SCHEDULE_ID = 'login-ingest-schedule';
/** How often the schedule starts an ingest unless told otherwise (`schedule create --every`). */
export const DEFAULT_SCHEDULE_INTERVAL = '30m';
/** The workflow ID of the schedule's own runs, which start the ingest under its ID as a child. */
export const scheduledIngestWorkflowId = (ingestWorkflowId: string): string => `${ingestWorkflowId}-scheduled`;

/** The re-encryption after a key rotation: one at a time (`client.ts keys reencrypt`). */
export const REENCRYPT_WORKFLOW_ID = 'pii-reencrypt';

const RECOVERY_PREFIX = 'pii-recovery-';
const UUID_V4 = '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}';
const RECOVERY_WORKFLOW_ID = new RegExp(`^${RECOVERY_PREFIX}(${UUID_V4})$`);

/** One recovery request, one workflow: its ID is derived from the request ID. */
export const recoveryWorkflowId = (requestId: string): string => `${RECOVERY_PREFIX}${requestId}`;

/** The request ID a recovery workflow ID carries (a lower-case UUID v4); null for any other workflow ID. */
export function requestIdOfRecoveryWorkflow(workflowId: string): string | null {
  return RECOVERY_WORKFLOW_ID.exec(workflowId)?.[1] ?? null;
}

/** The Temporal schedule that anchors the audit trail's head outside the database (`client.ts audit anchor --schedule`). */
export const AUDIT_ANCHOR_SCHEDULE_ID = 'pii-audit-anchor-schedule';
/** How often it anchors unless told otherwise. */
export const DEFAULT_AUDIT_ANCHOR_INTERVAL = '5m';
/** The workflow ID of its runs (one at a time). */
export const AUDIT_ANCHOR_WORKFLOW_ID = 'pii-audit-anchor';
