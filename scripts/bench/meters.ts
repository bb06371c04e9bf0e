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

/** CPU seconds (user + system) each process has used so far, and (`reaped`) those of its children it has waited for. */
function cpuTicks(pid: number): { own: number; reaped: number } {
  const fields = readOr(`/proc/${pid}/stat`).split(') ')[1]?.split(' ') ?? [];
  return { own: Number(fields[11] ?? 0) + Number(fields[12] ?? 0), reaped: Number(fields[13] ?? 0) + Number(fields[14] ?? 0) };
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
const readDirOr = (dir: string) => {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
};
const readOr = (file: string) => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

/**
 * CPU seconds per process group over a stretch of work. A group is a list of process IDs, or
 * a function that lists them, asked again at the end: a server's processes come and go (a
 * PostgreSQL backend per connection, opened after the meter started and closed before it
 * reads), so a group counts every process alive at either end, plus what its processes
 * reaped from children that ended in between (a backend's CPU goes to the postmaster's
 * children's time when it exits).
 */
export function cpuMeter(groups: Record<string, number[] | (() => number[])>) {
  const list = (g: number[] | (() => number[])) => (typeof g === 'function' ? g() : g);
  const snapshot = (pids: number[]) => new Map(pids.map((pid) => [pid, cpuTicks(pid)]));
  const start = Object.fromEntries(Object.entries(groups).map(([k, g]) => [k, snapshot(list(g))]));
  return () =>
    Object.fromEntries(
      Object.entries(groups).map(([k, g]) => {
        const end = snapshot([...new Set([...start[k].keys(), ...list(g)])]);
        let ticks = 0;
        for (const [pid, t] of end) {
          const s = start[k].get(pid) ?? { own: 0, reaped: 0 };
          // A process gone by the end reads 0: all it used is now in its parent's reaped time,
          // the part before the start included, which is taken off here.
          if (t.own === 0 && t.reaped === 0) {
            ticks -= s.own + s.reaped;
            continue;
          }
          ticks += t.own - s.own + (t.reaped - s.reaped);
        }
        return [k, round(ticks / 100, 2)];
      }),
    );
}

/** CPU seconds of one process's threads, by thread name (`/proc/PID/task/TID/comm`: node, tokio-runtime-w, V8 workers…). */
function threadTicks(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  const tids = readDirOr(`/proc/${pid}/task`);
  for (const tid of tids) {
    const name = readOr(`/proc/${pid}/task/${tid}/comm`).trim() || '?';
    const fields = readOr(`/proc/${pid}/task/${tid}/stat`).split(') ')[1]?.split(' ') ?? [];
    const key = `${Number(tid) === pid ? 'main' : name}#${tid}`;
    byName.set(key, Number(fields[11] ?? 0) + Number(fields[12] ?? 0));
  }
  return byName;
}

/**
 * Where a process's CPU went over a stretch of work, by thread (`main#PID`, `node#TID` for a
 * worker thread or V8's helpers, `tokio-runtime-w#TID` for the Temporal core…), busiest first.
 */
export function threadMeter(pid: number) {
  const start = threadTicks(pid);
  return () => {
    const out: Record<string, number> = {};
    for (const [key, ticks] of threadTicks(pid)) out[key] = (ticks - (start.get(key) ?? 0)) / 100;
    return Object.fromEntries(
      Object.entries(out)
        .filter(([, s]) => s >= 0.01)
        .sort((a, b) => b[1] - a[1])
        .map(([k, s]) => [k, round(s, 2)]),
    );
  };
}
