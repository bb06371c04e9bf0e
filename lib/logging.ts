// One compact log line per event for the worker (Temporal SDK, workflows, activities):
// time, level, message, and only the metadata worth reading. Logs carry message IDs and
// counts, never message content.
import type { LogLevel, LogMetadata } from '@temporalio/common';
import { DefaultLogger, Runtime, type LogEntry } from '@temporalio/worker';

/** SDK metadata that makes lines long and says little to an operator. */
const NOISE = new Set(['sdkComponent', 'taskToken', 'namespace', 'isLocal', 'workflowRunId', 'taskQueue', 'workflowType', 'activityId']);

export function formatLogEntry(entry: LogEntry): string {
  const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
  const meta = Object.entries(entry.meta ?? ({} as LogMetadata))
    .filter(([k, v]) => !NOISE.has(k) && v !== undefined && !(k === 'attempt' && v === 1))
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  return `${time} ${entry.level.padEnd(5)} ${entry.message}${meta.length ? ` ${meta.join(' ')}` : ''}`;
}

let installed = false;

/** Installs the logger for the Temporal runtime of this process (once; later calls do nothing). */
export function installWorkerLogging(level: LogLevel): void {
  if (installed) return;
  Runtime.install({
    logger: new DefaultLogger(level, (entry) => {
      // The recovery worker runs activities only, by design (recovery-worker.ts): not worth a warning.
      if (entry.message === 'No workflows registered, not polling for workflow tasks') return;
      console.error(formatLogEntry(entry));
    }),
  });
  installed = true;
}
