// Pieces shared by the benchmark (scripts/bench.ts) and the chaos suite (scripts/chaos/):
// a fresh migrated database on the two roles, queues, worker processes as users run them,
// and the balance of a finished ingest.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { CreateQueueCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { Client as PgClient } from 'pg';
import { migrate } from '../lib/platform/migrate';
import { getApproximateCounts } from '../lib/ingest/sqs';
import type { QueueDepth } from '../lib/contract/types';

export const ROOT = path.join(__dirname, '..');

/** A new, empty database owned by the role of `ownerBase` (which may create databases); its URL as that role. */
export async function createDatabase(ownerBase: string, name: string): Promise<string> {
  const pg = new PgClient({ connectionString: ownerBase });
  await pg.connect();
  try {
    await pg.query(`CREATE DATABASE "${name}"`);
  } finally {
    await pg.end();
  }
  const url = new URL(ownerBase);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A new, migrated database: its URLs as the owner role and as the application role (services/postgres.ts). */
export async function freshDatabase(
  services: { ownerDatabaseUrl?: string | null; databaseUrl: string },
  name: string,
): Promise<{ owner: string; app: string }> {
  const owner = await createDatabase(services.ownerDatabaseUrl ?? services.databaseUrl, name);
  await migrate(owner, () => {});
  const app = new URL(services.databaseUrl);
  app.pathname = `/${name}`;
  return { owner, app: app.toString() };
}

export async function createQueue(sqs: SQSClient, name: string): Promise<string> {
  return (await sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;
}

export interface WorkerProcess {
  pid: number;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  /** Everything it printed (last 64 KB). */
  output(): string;
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** How a worker process runs: `worker.ts` under ts-node (development) or `dist/worker.js` (`npm run build`, the image). */
export type WorkerEntry = 'ts-node' | 'compiled';

/** `worker.ts` as users run it, in a process of its own; resolves once it polls its task queue. */
export function startWorkerProcess(
  env: NodeJS.ProcessEnv,
  nodeArgs: string[] = [],
  entry: WorkerEntry = 'ts-node',
): Promise<WorkerProcess> {
  const main = entry === 'compiled' ? [path.join('dist', 'worker.js')] : ['-r', 'ts-node/register/transpile-only', 'worker.ts'];
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [...nodeArgs, ...main], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    const onData = (c: Buffer) => {
      out = (out + c.toString('utf8')).slice(-65536);
      if (out.includes('Worker polling')) resolve(handle);
    };
    const handle: WorkerProcess = {
      pid: child.pid!,
      exited,
      output: () => out,
      async kill(signal) {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        await exited;
      },
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code, signal) =>
      reject(new Error(`worker.ts exited (${signal ?? `code ${code}`}) before it polled:\n${out.slice(-2000)}`)),
    );
  });
}

export interface Workers {
  pids: number[];
  stop(): Promise<void>;
}

export async function startWorkers(
  n: number,
  env: NodeJS.ProcessEnv,
  nodeArgs: string[] = [],
  entry: WorkerEntry = 'ts-node',
): Promise<Workers> {
  const children = await Promise.all(Array.from({ length: n }, () => startWorkerProcess(env, nodeArgs, entry)));
  return {
    pids: children.map((c) => c.pid),
    async stop() {
      await Promise.all(children.map((c) => c.kill('SIGTERM')));
    },
  };
}

export interface Balance {
  rows: number;
  quarantine: number;
  ledger: number;
  /** Message IDs stored more than once (rows and quarantine together). */
  storedTwice: number;
  distinctSent: number;
  left: QueueDepth;
  balanced: boolean;
}

/** Every distinct ID sent is one row or one quarantine entry, none is stored twice, and the queue is empty. */
export async function balance(databaseUrl: string, sqs: SQSClient, queueUrl: string, sentIds: string[]): Promise<Balance> {
  const pg = new PgClient({ connectionString: databaseUrl });
  await pg.connect();
  try {
    const {
      rows: [db],
    } = await pg.query<{ rows: number; quarantine: number; ledger: number; twice: number }>(
      `SELECT (SELECT count(*) FROM user_logins)::int AS rows, (SELECT count(*) FROM quarantine)::int AS quarantine,
              (SELECT count(*) FROM ingested_messages)::int AS ledger,
              (SELECT count(*) FROM (SELECT message_id FROM (SELECT message_id FROM user_logins UNION ALL SELECT message_id FROM quarantine) s
                                     GROUP BY message_id HAVING count(*) > 1) d)::int AS twice`,
    );
    const left = await getApproximateCounts(sqs, queueUrl);
    const distinctSent = new Set(sentIds).size;
    return {
      rows: db.rows,
      quarantine: db.quarantine,
      ledger: db.ledger,
      storedTwice: db.twice,
      distinctSent,
      left,
      balanced:
        db.rows + db.quarantine === distinctSent &&
        db.ledger === distinctSent &&
        db.twice === 0 &&
        left.visible + left.inFlight === 0,
    };
  } finally {
    await pg.end();
  }
}
