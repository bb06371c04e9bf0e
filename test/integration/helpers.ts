// Shared set-up for the integration tests: each test file gets its own database, queue,
// task queue and workflow ID on the shared real services, and a worker in this process.
import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CreateQueueCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Client } from '@temporalio/client';
import { Client as PgClient } from 'pg';
import { loadConfig, type Config } from '../../lib/platform/config';
import type { EmbeddedServices } from '../../lib/platform/embedded-services';
import { createDb, type Db } from '../../lib/platform/db';
import { LocalKeyWrapper } from '../../lib/pii/kek';
import { initKeyringFile, loadKeyring, newCodecKeyFile, type Keyring } from '../../lib/pii/keyring';
import { migrate } from '../../lib/platform/migrate';
import { createSqsClient } from '../../lib/ingest/sqs';
import { connectClient } from '../../lib/platform/temporal';
import { startWorker } from '../../worker';
import { createDatabase as createDatabaseAs } from '../../scripts/harness';

// The emulator accepts any credentials; the SDK's default chain reads these.
process.env.AWS_ACCESS_KEY_ID ??= 'test';
process.env.AWS_SECRET_ACCESS_KEY ??= 'test';

export function testServices(): Omit<EmbeddedServices, 'pid'> & { adminDatabaseUrl?: string } {
  const file = process.env.TEST_SERVICES_FILE;
  if (!file) throw new Error('TEST_SERVICES_FILE is not set: run the integration tests through jest (global-setup.ts)');
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

export const SAMPLE: Record<string, unknown>[] = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', '..', 'data', 'sample.json'), 'utf8'),
);
/** The 99 well-formed login events of the sample (one message is of another kind). */
export const VALID_SAMPLE = SAMPLE.filter((e) => typeof e.ip === 'string');
/** Every IP and device ID of the sample: none may appear in plain text anywhere we store. */
export const SAMPLE_PII: string[] = [
  ...new Set(SAMPLE.flatMap((e) => [e.ip, e.device_id]).filter((v): v is string => typeof v === 'string')),
];

/** The owner role's URL of the test services' database (the owner may create databases). */
function ownerUrl(): string {
  const services = testServices();
  if (!services.ownerDatabaseUrl)
    throw new Error('The test services publish no ownerDatabaseUrl: services/postgres.ts should create the two roles');
  return services.ownerDatabaseUrl;
}

/** A new database owned by the owner role; returns the owner's URL of it (run migrations as that). */
export async function createDatabase(name: string): Promise<string> {
  return createDatabaseAs(ownerUrl(), name);
}

/** The same database as `url`, as one of the writer roles (services/postgres.ts, migration 0006). */
export function asRole(url: string, role: 'app' | 'recovery' | 'operator'): string {
  const services = testServices();
  const base = { app: services.databaseUrl, recovery: services.recoveryDatabaseUrl, operator: services.operatorDatabaseUrl }[
    role
  ];
  if (!base) throw new Error(`The test services publish no URL for the ${role} role: services/postgres.ts should create it`);
  const login = new URL(base);
  const out = new URL(url);
  out.username = login.username;
  out.password = login.password;
  return out.toString();
}

/** The same database as `url`, as the ingest worker's role (login_ingest_app). */
export const asAppRole = (url: string): string => asRole(url, 'app');

export async function createQueue(sqs: SQSClient, name: string): Promise<string> {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  return QueueUrl!;
}

export interface Pipeline {
  config: Config;
  /** The same database as config.databaseUrl, as the owner role (which ran the migrations). */
  ownerDatabaseUrl: string;
  keyring: Keyring;
  db: Db;
  sqs: SQSClient;
  client: Client;
  /** Everything a subprocess worker printed (only with { subprocessWorker: true }). */
  workerOutput: string[];
  /** The environment a user would set to reach these services (for subprocess tests). */
  env: Record<string, string>;
  /** Stops this pipeline's worker (to run worker processes of the test's own instead) ... */
  stopWorker(): Promise<void>;
  /** ... and starts it again. */
  restartWorker(): Promise<void>;
  close(): Promise<void>;
}

/**
 * `npx ts-node worker.ts` as users run it, in its own process, with the given
 * environment; resolves once it polls. Its output is collected (and not printed).
 */
export async function startWorkerProcess(
  env: Record<string, string>,
  output: string[] = [],
): Promise<(signal?: NodeJS.Signals) => Promise<void>> {
  const child = spawn(process.execPath, ['-r', 'ts-node/register', 'worker.ts'], {
    cwd: path.join(__dirname, '..', '..'),
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output.push(chunk.toString('utf8'));
      if (output.join('').includes('Worker polling task queue')) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`worker.ts exited (code ${code}):\n${output.join('')}`)));
  });
  return async (signal: NodeJS.Signals = 'SIGINT') => {
    child.kill(signal);
    await exited;
  };
}

/** A database, a queue and a worker of their own, on the shared services, configured through the environment as a user would. */
export async function startPipeline(
  name: string,
  extraEnv: Record<string, string> = {},
  opts: { subprocessWorker?: boolean } = {},
): Promise<Pipeline> {
  const services = testServices();
  const id = `${name}_${crypto.randomBytes(4).toString('hex')}`;
  const ownerDatabaseUrl = await createDatabase(id);
  await migrate(ownerDatabaseUrl, () => {});
  const baseEnv = {
    TEMPORAL_ADDRESS: services.temporalAddress,
    // A role per writer, as in production (migration 0006), and the owner's for migrations.
    DATABASE_URL: asAppRole(ownerDatabaseUrl),
    RECOVERY_DATABASE_URL: asRole(ownerDatabaseUrl, 'recovery'),
    OPERATOR_DATABASE_URL: asRole(ownerDatabaseUrl, 'operator'),
    DATABASE_OWNER_URL: ownerDatabaseUrl,
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_SQS: services.sqsEndpoint,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    TEMPORAL_TASK_QUEUE: `tq-${id}`,
    INGEST_WORKFLOW_ID: `ingest-${id}`,
    DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'login-ingest-data-')),
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'WARN',
    ...extraEnv,
  };
  const admin = createSqsClient(loadConfig(baseEnv, []).sqs);
  const queueUrl = await createQueue(admin, `q-${id}`);
  admin.destroy();
  // Envelope-encrypted keys, as in production: a key file wrapped by a master key.
  const keyFile = path.join(baseEnv.DATA_DIR, 'keyring.json');
  const masterKey = crypto.randomBytes(32).toString('base64');
  await initKeyringFile(keyFile, new LocalKeyWrapper(Buffer.from(masterKey, 'base64')));
  // The payload codec's own key, apart from the PII keys.
  const codecKeyFile = path.join(baseEnv.DATA_DIR, 'codec-keys.json');
  fs.writeFileSync(codecKeyFile, JSON.stringify(newCodecKeyFile()), { mode: 0o600 });
  const env = {
    ...baseEnv,
    SQS_QUEUE_URL: queueUrl,
    PII_KEYRING_FILE: keyFile,
    PII_MASTER_KEY: masterKey,
    TEMPORAL_CODEC_KEY_FILE: codecKeyFile,
  };
  const config = loadConfig(env);
  const keyring = await loadKeyring(config, () => {});
  const db = createDb(config.databaseUrl);
  const sqs = createSqsClient(config.sqs);
  const workerOutput: string[] = [];
  let stopWorker: (() => Promise<unknown>) | null = null;
  const restartWorker = async () => {
    if (opts.subprocessWorker) stopWorker = await startWorkerProcess(env, workerOutput);
    else stopWorker = (await startWorker(config, keyring)).shutdown;
  };
  await restartWorker();
  const client = await connectClient(config.temporal, keyring);
  return {
    config,
    ownerDatabaseUrl,
    keyring,
    db,
    sqs,
    client,
    workerOutput,
    env,
    async stopWorker() {
      await stopWorker?.();
      stopWorker = null;
    },
    restartWorker,
    async close() {
      await stopWorker?.();
      await client.connection.close();
      await db.$disconnect();
      sqs.destroy();
      fs.rmSync(baseEnv.DATA_DIR, { recursive: true, force: true });
    },
  };
}

/** `npx ts-node client.ts …` as a user runs it, with the pipeline's environment; rejects on a non-zero exit (with code, stdout, stderr). */
export function runClient(p: Pipeline, args: string[], env: Record<string, string> = {}) {
  return promisify(execFile)('npx', ['ts-node', 'client.ts', ...args], {
    cwd: path.join(__dirname, '..', '..'),
    env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', ...p.env, ...env },
    maxBuffer: 16 * 1024 * 1024,
  });
}

export interface Hit {
  where: string;
  needle: string;
}

/**
 * Searches decoded content for plaintext: strings as they are, binary (bytea, payload
 * data) as bytes, so hex or base64 renderings cannot hide a value from the search.
 */
export function findPlaintext(items: { where: string; value: unknown }[], needles: string[]): Hit[] {
  const hits: Hit[] = [];
  const visit = (where: string, value: unknown, depth: number) => {
    if (value === null || value === undefined || depth > 64) return;
    let text: string;
    if (typeof value === 'string') text = value;
    else if (value instanceof Uint8Array) text = Buffer.from(value).toString('latin1');
    else if (typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) visit(`${where}.${k}`, v, depth + 1);
      return;
    } else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') text = String(value);
    else return; // functions and symbols carry no data
    for (const needle of needles) if (text.includes(needle)) hits.push({ where, needle });
  };
  for (const item of items) visit(item.where, item.value, 0);
  return hits;
}

/** Every value of every table in the public schema, bytea decoded to bytes by the driver. */
export async function dumpTables(databaseUrl: string): Promise<{ where: string; value: unknown }[]> {
  const pg = new PgClient({ connectionString: databaseUrl });
  await pg.connect();
  try {
    const tables = await pg.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`);
    const items: { where: string; value: unknown }[] = [];
    for (const { tablename } of tables.rows) {
      const rows = await pg.query(`SELECT * FROM "${tablename}"`);
      rows.rows.forEach((row, i) => items.push({ where: `${tablename}[${i}]`, value: row }));
    }
    return items;
  } finally {
    await pg.end();
  }
}
