/**
 * Running the Temporal dev server (`temporal server start-dev`) from a CLI binary that
 * services/temporal-cli.ts found or installed: on fixed ports (the Web UI's included),
 * with an SQLite file for persistence when given one, the search attributes and any other
 * arguments passed through, its output to a log file, ready once its namespace answers,
 * and killed with this process if nobody stopped it.
 *
 * Why not the SDK's TestWorkflowEnvironment.createLocal({ server: { executable: { type:
 * 'existing-path', path } } }): it takes the UI port, the SQLite file and the search
 * attributes too, and measured here it is up a little sooner (1.0–1.3 s against 1.4–1.8 s,
 * three starts each, CLI 1.9.1), but it does not give the server's pid (the chaos suite
 * kills and restarts the server by it) or write its output to a file (`temporal.log`, shown
 * when a start fails), and it does not refuse a port already in use by name.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, promises as fsp } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../lib/platform/guards';
import { lastLines } from './process-output';

export interface TemporalDevServer {
  /** gRPC address for `Connection.connect` / `NativeConnection.connect`, e.g. "127.0.0.1:7233". */
  address: string;
  /** Web UI, or null when started headless. */
  uiUrl: string | null;
  /** The server's process (the chaos suite kills it). */
  pid: number;
  /** SIGTERM, then SIGKILL after 10 s. Safe to call more than once. */
  stop(): Promise<void>;
}

const READY_DEADLINE_MS = 60_000;
const STOP_GRACE_MS = 10_000;

export async function startTemporalDevServer(opts: {
  cliPath: string;
  port: number;
  uiPort: number | null;
  dbFilename?: string;
  namespace?: string;
  logFile?: string;
  extraArgs?: string[];
}): Promise<TemporalDevServer> {
  const address = `127.0.0.1:${opts.port}`;
  const namespace = opts.namespace ?? 'default';
  // Otherwise a server already listening there would answer the readiness probe for us.
  await assertPortFree(opts.port, 'gRPC port');
  if (opts.uiPort !== null) await assertPortFree(opts.uiPort, 'UI port');
  if (opts.dbFilename) await fsp.mkdir(path.dirname(path.resolve(opts.dbFilename)), { recursive: true });

  const output = await openServerOutput(opts.logFile);
  const child = spawn(opts.cliPath, devServerArgs(opts, namespace), { stdio: output.stdio });
  output.afterSpawn(child);
  const exited = exitOf(child);
  killOnParentExit(child);

  try {
    await waitUntilReady(address, namespace, exited);
  } catch (err) {
    await stopChild(child, exited);
    const tail = await output.tail();
    throw new Error(`${errorMessage(err)}${tail ? `\nLast server output:\n${tail}` : ''}`);
  }

  let stopping: Promise<void> | undefined;
  return {
    address,
    uiUrl: opts.uiPort === null ? null : `http://127.0.0.1:${opts.uiPort}`,
    pid: child.pid!,
    stop: () => (stopping ??= stopChild(child, exited)),
  };
}

function devServerArgs(
  opts: { port: number; uiPort: number | null; dbFilename?: string; extraArgs?: string[] },
  namespace: string,
): string[] {
  return [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(opts.port),
    ...(opts.uiPort === null ? ['--headless'] : ['--ui-port', String(opts.uiPort)]),
    ...(opts.dbFilename ? ['--db-filename', opts.dbFilename] : []),
    '--namespace',
    namespace,
    '--log-level',
    'warn',
    ...(opts.extraArgs ?? []),
  ];
}

/**
 * Server output goes to the log file when there is one; otherwise stdout is dropped and
 * the last few KB of stderr are kept in memory, so an early exit can still be explained.
 */
async function openServerOutput(logFile?: string): Promise<{
  stdio: ['ignore', 'ignore' | 'pipe' | number, 'ignore' | 'pipe' | number];
  afterSpawn(child: ChildProcess): void;
  tail(): Promise<string>;
}> {
  if (logFile) {
    await fsp.mkdir(path.dirname(path.resolve(logFile)), { recursive: true });
    const fd = openSync(logFile, 'a');
    return {
      stdio: ['ignore', fd, fd],
      afterSpawn: () => closeSync(fd), // the child holds its own copy
      tail: async () => lastLines(await readEnd(logFile, 8192), 20),
    };
  }
  let stderr = '';
  return {
    stdio: ['ignore', 'ignore', 'pipe'],
    afterSpawn: (child) =>
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-8192);
      }),
    tail: async () => lastLines(stderr, 20),
  };
}

type Exit = { code: number | null; signal: NodeJS.Signals | null; error?: Error };

/** Resolves once the child has exited (or could not be spawned at all). */
function exitOf(child: ChildProcess): Promise<Exit> {
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.on('error', (error) => {
      if (child.pid === undefined) resolve({ code: null, signal: null, error });
    });
  });
}

/** Polls until the gRPC port accepts connections and the namespace answers, or fails. */
async function waitUntilReady(address: string, namespace: string, exited: Promise<Exit>): Promise<void> {
  const deadline = Date.now() + READY_DEADLINE_MS;
  let lastError: unknown = new Error('no attempt finished');
  while (Date.now() < deadline) {
    const outcome = await Promise.race([
      exited.then((exit) => ({ exit })),
      probeServer(address, namespace).then(
        () => ({ ready: true as const }),
        (error: unknown) => ({ error }),
      ),
    ]);
    if ('exit' in outcome) {
      throw new Error(`Temporal dev server exited before it was ready (${describeExit(outcome.exit)})`);
    }
    if ('ready' in outcome) return;
    lastError = outcome.error;
    await sleep(250);
  }
  throw new Error(
    `Temporal dev server at ${address} was not ready within ${READY_DEADLINE_MS / 1000} s: ` + errorMessage(lastError),
  );
}

/** One readiness check; every step has its own timeout so a hung server cannot stall the loop. */
async function probeServer(address: string, namespace: string): Promise<void> {
  const [host, port] = address.split(':');
  await tcpConnect(host, Number(port), 1000);
  const connection = await Connection.connect({ address, connectTimeout: 2000 });
  try {
    await connection.withDeadline(Date.now() + 3000, async () => {
      await connection.workflowService.getSystemInfo({});
      await connection.workflowService.describeNamespace({ namespace });
    });
  } finally {
    await connection.close();
  }
}

function tcpConnect(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`connect to ${host}:${port} timed out`)));
    socket.once('connect', () => {
      socket.end();
      resolve();
    });
    socket.once('error', reject);
  });
}

async function stopChild(child: ChildProcess, exited: Promise<Exit>): Promise<void> {
  let killTimer: NodeJS.Timeout | undefined;
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    killTimer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  }
  await exited;
  clearTimeout(killTimer); // a pending timer would keep the parent process alive
  runningServers.delete(child);
}

/**
 * If this process exits without calling stop(), kill the servers it started. This covers
 * normal exits and uncaught errors; Ctrl-C reaches the server anyway (same process group).
 * A SIGKILLed parent can still leave one behind: that would need a supervisor, not worth it.
 */
const runningServers = new Set<ChildProcess>();
let exitHookInstalled = false;

function killOnParentExit(child: ChildProcess): void {
  runningServers.add(child);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of runningServers) c.kill('SIGKILL');
  });
}

/** Fails, naming the port and what it was for, when something listens on 127.0.0.1:port already. */
async function assertPortFree(port: number, what: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(`Cannot start the Temporal dev server: ${what} 127.0.0.1:${port} is already in use`)
          : err,
      ),
    );
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });
}

function describeExit(exit: Exit): string {
  if (exit.error) return `could not start: ${exit.error.message}`;
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}

async function readEnd(file: string, bytes: number): Promise<string> {
  try {
    const handle = await fsp.open(file, 'r');
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, bytes);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      return buffer.toString();
    } finally {
      await handle.close();
    }
  } catch {
    return '';
  }
}
