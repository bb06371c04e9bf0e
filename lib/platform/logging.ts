// The Temporal runtime of the worker process: its log lines (Temporal SDK, workflows,
// activities) and its own metrics exporter. Text: one compact line per event (time, level,
// message, the metadata worth reading). LOG_FORMAT=json: one JSON object per line with
// level, time, message, workflowId, runId, activity and the counts. Logs carry message IDs
// and counts, never message content.
import type { LogLevel, LogMetadata } from '@temporalio/common';
import { DefaultLogger, Runtime, type LogEntry } from '@temporalio/worker';
import type { LogFormat } from './log';

/** SDK metadata that makes lines long and says little to an operator. */
const NOISE = new Set([
  'sdkComponent',
  'taskToken',
  'namespace',
  'isLocal',
  'workflowRunId',
  'taskQueue',
  'workflowType',
  'activityId',
]);

export function formatLogEntry(entry: LogEntry): string {
  const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
  const meta = Object.entries(entry.meta ?? ({} as LogMetadata))
    .filter(([k, v]) => !NOISE.has(k) && v !== undefined && !(k === 'attempt' && v === 1))
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  return `${time} ${entry.level.padEnd(5)} ${entry.message}${meta.length ? ` ${meta.join(' ')}` : ''}`;
}

/** JSON metadata left out: opaque tokens and what every line of a worker shares. */
const JSON_NOISE = new Set(['taskToken', 'sdkComponent', 'isLocal']);

export function formatLogEntryJson(entry: LogEntry): string {
  const out: Record<string, unknown> = {
    level: entry.level.toLowerCase(),
    time: new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString(),
    message: entry.message,
  };
  for (const [k, v] of Object.entries(entry.meta ?? ({} as LogMetadata))) {
    if (JSON_NOISE.has(k) || v === undefined) continue;
    const key = k === 'workflowRunId' ? 'runId' : k;
    if (!(key in out))
      out[key] = v instanceof Error ? { name: v.name, message: v.message } : typeof v === 'bigint' ? String(v) : v;
  }
  return JSON.stringify(out);
}

let installed: { sdkMetricsAddress: string | null } | null = null;

/**
 * Installs the Temporal runtime of this process, once (later calls return what the first
 * one installed): its logger, and with `sdkMetricsAddress` (127.0.0.1:port) the SDK's
 * Prometheus exporter, which lib/platform/metrics-server.ts serves together with ours.
 */
export function installWorkerRuntime(o: { level: LogLevel; format?: LogFormat; sdkMetricsAddress?: string | null }): {
  sdkMetricsAddress: string | null;
} {
  if (installed) return installed;
  const format = o.format === 'json' ? formatLogEntryJson : formatLogEntry;
  Runtime.install({
    logger: new DefaultLogger(o.level, (entry) => {
      // The recovery worker runs activities only, by design (recovery-worker.ts): not worth a warning.
      if (entry.message === 'No workflows registered, not polling for workflow tasks') return;
      process.stderr.write(format(entry) + '\n');
    }),
    ...(o.sdkMetricsAddress
      ? {
          telemetryOptions: {
            // Prometheus conventions: counters end in _total, durations are seconds with the unit in the name.
            metrics: {
              prometheus: {
                bindAddress: o.sdkMetricsAddress,
                countersTotalSuffix: true,
                unitSuffix: true,
                useSecondsForDurations: true,
              },
            },
          },
        }
      : {}),
  });
  installed = { sdkMetricsAddress: o.sdkMetricsAddress ?? null };
  return installed;
}

/** The logger only (no SDK metrics). */
export function installWorkerLogging(level: LogLevel, format?: LogFormat): void {
  installWorkerRuntime({ level, format });
}
