// What the benchmark measures besides time: the history an ingest left in Temporal, the
// peak memory and the CPU seconds of the processes involved (read from /proc).
import fs from 'node:fs';
import { temporal } from '@temporalio/proto';
import type { connectClient } from '../../lib/platform/temporal';
import { round } from './report';

/** Events and encoded bytes of every run of an ingest (continue-as-new chains them). */
export async function historySize(client: Awaited<ReturnType<typeof connectClient>>, workflowId: string) {
  let events = 0;
  let bytes = 0;
  let runs = 0;
  for await (const wf of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    const history = await client.workflow.getHandle(workflowId, wf.runId).fetchHistory();
    events += history.events?.length ?? 0;
    bytes += temporal.api.history.v1.History.encode(history).finish().length;
    runs++;
  }
  return { events, bytes, runs };
}

/** Peak resident set of the given processes (their threads included), sampled every 100 ms. */
export function sampleRss(pids: number[]) {
  const peak = new Map<number, number>();
  const read = () => {
    for (const pid of pids) {
      try {
        const kb = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
        peak.set(pid, Math.max(peak.get(pid) ?? 0, kb * 1024));
      } catch {
        // gone
      }
    }
  };
  const timer = setInterval(read, 100);
  return () => (clearInterval(timer), read(), Math.max(...peak.values()));
}

/** CPU seconds (user + system) used so far by the given processes. */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const fields = readOr(`/proc/${pid}/stat`).split(') ')[1]?.split(' ') ?? [];
    ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  }
  return ticks / 100;
}

/** The processes of this benchmark's server listening on `port` (its command line says `-p PORT` or `--port PORT`), with their children. */
export function serverProcesses(port: string): number[] {
  const all = fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
  const roots = all.filter((pid) =>
    readOr(`/proc/${pid}/cmdline`)
      .split('\0')
      .some((arg, i, args) => (arg === '-p' || arg === '--port') && args[i + 1] === port),
  );
  const ppid = (pid: number) => Number(readOr(`/proc/${pid}/stat`).split(') ')[1]?.split(' ')[1]);
  return all.filter((pid) => roots.includes(pid) || roots.includes(ppid(pid)));
}
const readOr = (file: string) => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

/** CPU seconds per process group over a stretch of work. */
export function cpuMeter(groups: Record<string, number[]>) {
  const start = Object.fromEntries(Object.entries(groups).map(([k, v]) => [k, cpuSeconds(v)]));
  return () => Object.fromEntries(Object.entries(groups).map(([k, v]) => [k, round(cpuSeconds(v) - start[k], 2)]));
}
