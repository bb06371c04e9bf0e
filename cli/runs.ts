// `client.ts runs`: recent ingest runs with their numbers, read from the search attributes
// each run records (lib/contract/run-attributes.ts), so no history has to be fetched or decoded.
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { INGEST_PERSISTED, INGEST_QUARANTINED, INGEST_RECEIVED, INGEST_STOP_REASON } from '../lib/contract/run-attributes';

export interface RunRow {
  workflowId: string;
  runId: string;
  /** RUNNING, COMPLETED, CONTINUED_AS_NEW, FAILED … */
  status: string;
  startTime: string;
  closeTime: string | null;
  durationSeconds: number | null;
  /** Totals of the whole drain up to this run (continue-as-new carries them over); null when the run recorded none. */
  received: number | null;
  persisted: number | null;
  quarantined: number | null;
  stopReason: string | null;
}

export function runRow(e: WorkflowExecutionInfo): RunRow {
  const sa = e.typedSearchAttributes;
  return {
    workflowId: e.workflowId,
    runId: e.runId,
    status: e.status.name,
    startTime: e.startTime.toISOString(),
    closeTime: e.closeTime?.toISOString() ?? null,
    durationSeconds: e.closeTime ? (e.closeTime.getTime() - e.startTime.getTime()) / 1000 : null,
    received: sa.get(INGEST_RECEIVED) ?? null,
    persisted: sa.get(INGEST_PERSISTED) ?? null,
    quarantined: sa.get(INGEST_QUARANTINED) ?? null,
    stopReason: sa.get(INGEST_STOP_REASON) ?? null,
  };
}

/** Visibility query for the ingest runs, optionally of one workflow ID. */
export function runsQuery(workflowId?: string): string {
  return `WorkflowType = 'ingestWorkflow'${workflowId ? ` AND WorkflowId = '${workflowId.replace(/'/g, "\\'")}'` : ''}`;
}

export async function listRuns(client: Client, o: { limit: number; workflowId?: string }): Promise<RunRow[]> {
  const rows: RunRow[] = [];
  for await (const e of client.workflow.list({ query: runsQuery(o.workflowId), pageSize: Math.min(o.limit, 100) })) {
    rows.push(runRow(e));
    if (rows.length >= o.limit) break;
  }
  return rows;
}

export function formatRuns(rows: RunRow[]): string {
  if (!rows.length) return 'No ingest runs yet.';
  const v = (x: number | string | null) => (x === null ? '-' : String(x));
  const table = [
    ['started', 'status', 'stop reason', 'received', 'persisted', 'quarantined', 'seconds', 'workflow / run'],
    ...rows.map((r) => [
      r.startTime.replace('T', ' ').slice(0, 19),
      r.status,
      v(r.stopReason),
      v(r.received),
      v(r.persisted),
      v(r.quarantined),
      r.durationSeconds === null ? '-' : r.durationSeconds.toFixed(1),
      `${r.workflowId} ${r.runId}`,
    ]),
  ];
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  return table.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
}
