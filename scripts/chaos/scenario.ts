// One chaos scenario run: a fresh database, queue and keyring on the chaos services, worker
// processes as users run them, an ingest through the CLI's own code while the faults strike
// (./faults), and the balance of what it left; then runChaos: the services, the baseline and
// the faulted run, judged (./verdict). `npm run chaos` (scripts/chaos.ts) and
// test/integration/chaos.test.ts run it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { Client as PgClient } from 'pg';
import { loadConfig, type Config } from '../../lib/platform/config';
import { optionsFromConfig, runIngest } from '../../cli/ingest-run';
import { LocalKeyWrapper } from '../../lib/pii/kek';
import { initKeyringFile, loadKeyring, type Keyring } from '../../lib/pii/keyring';
import { random } from '../../lib/ingest/load';
import { createSqsClient, getApproximateCounts, sendMessages } from '../../lib/ingest/sqs';
import { connectClient } from '../../lib/platform/temporal';
import type { IngestSummary, QueueDepth } from '../../lib/contract/types';
import { balance, createQueue, freshDatabase, startWorkerProcess } from '../harness';
import { round, sleep, type Log } from './common';
import { strikeFaults, type RunWorkers } from './faults';
import { chaosMessages, type Messages } from './messages';
import type { ChaosOptions, Fault } from './options';
import { startSqsProxy } from './proxy';
import { startChaosServices, type ChaosServices } from './services';
import { judge, type ChaosReport, type RunResult } from './verdict';

interface RunInput {
  tag: string;
  services: ChaosServices;
  options: ChaosOptions;
  messages: Messages;
  faults: Fault[];
  at: number[];
  log: Log;
}

export async function runScenario({ tag, services, options: o, messages, faults, at, log }: RunInput): Promise<RunResult> {
  const rnd = random(o.seed);
  const deadline = Date.now() + o.timeoutSeconds * 1000;
  const masterKey = crypto.randomBytes(32).toString('base64');
  const dataDir = path.join(services.scratch, tag);
  fs.mkdirSync(dataDir, { recursive: true });
  const keyFile = path.join(dataDir, 'keyring.json');
  await initKeyringFile(keyFile, new LocalKeyWrapper(Buffer.from(masterKey, 'base64')));
  const db = await freshDatabase(services.pg, tag);
  const common: NodeJS.ProcessEnv = {
    ...process.env,
    LOG_LEVEL: 'WARN',
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'chaos',
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'chaos',
    AWS_REGION: 'us-east-1',
    TEMPORAL_ADDRESS: services.temporalAddress,
    PII_KEYRING_FILE: keyFile,
    PII_MASTER_KEY: masterKey,
    DATA_DIR: dataDir,
    DATABASE_URL: db.app,
    DATABASE_OWNER_URL: db.owner,
    TEMPORAL_TASK_QUEUE: `tq-${tag}`,
    INGEST_WORKFLOW_ID: `ingest-${tag}`,
    SQS_VISIBILITY_TIMEOUT_SECONDS: String(o.visibilityTimeoutSeconds),
  };
  // The runner's own client talks to the emulator directly, the workers through the proxy.
  const admin: SQSClient = createSqsClient(
    loadConfig({ ...common, AWS_ENDPOINT_URL_SQS: services.sqs.endpoint, SQS_QUEUE_URL: services.sqs.queueUrl }).sqs,
  );
  const queueUrl = await createQueue(admin, tag);
  const proxy = await startSqsProxy({
    upstream: services.sqs.endpoint,
    admin,
    redeliverShare: o.redeliverShare,
    rnd: random(o.seed + 1),
  });
  const env: NodeJS.ProcessEnv = { ...common, SQS_QUEUE_URL: queueUrl, AWS_ENDPOINT_URL_SQS: proxy.endpoint };
  const config: Config = loadConfig(env);
  const keyring: Keyring = await loadKeyring(config, () => {});
  const workers: RunWorkers = { live: [], starts: 0, kills: 0, starting: [], startFailures: [], neverStarted: [] };
  let client: Client | null = null;
  try {
    const sentIds = await sendMessages(admin, queueUrl, messages.bodies);
    const total = sentIds.length;
    for (let i = 0; i < o.workers; i++) workers.live.push(await startWorkerProcess(env));
    workers.starts += o.workers;
    client = await connectClient(config.temporal, keyring);

    const t0 = performance.now();
    const since = () => (performance.now() - t0) / 1000;
    let done = false;
    let depth: QueueDepth = { visible: total, inFlight: 0 };
    let gone = 0;
    const progress: [number, number][] = [[0, 0]];
    const monitor = (async () => {
      while (!done && Date.now() < deadline) {
        try {
          depth = await getApproximateCounts(admin, queueUrl);
          gone = 1 - (depth.visible + depth.inFlight) / total;
          progress.push([round(since(), 2), round(gone, 4)]);
        } catch {
          // the emulator is never struck; a failed read is retried
        }
        await sleep(100);
      }
    })();

    const striker = strikeFaults({
      faults,
      at,
      services,
      options: o,
      proxy,
      admin,
      queueUrl,
      total,
      env,
      deadline,
      rnd,
      workers,
      watch: () => ({ gone, depth, done }),
      since,
      log,
    });

    let summary: IngestSummary | null = null;
    let error: string | null = null;
    try {
      summary = await ingestThroughFaults(client, config, deadline, log);
    } catch (err) {
      error = (err as Error).message;
    }
    const drainSeconds = since();
    done = true;
    const [, strikes] = await Promise.all([monitor, striker]);
    await Promise.allSettled(workers.starting);

    const bal = await balance(config.databaseUrl, admin, queueUrl, sentIds);
    const hostile = await checkHostile(
      config.databaseUrl,
      messages.hostile.map((h) => ({ ...h, id: sentIds[h.index] })),
    );
    return {
      drainSeconds: round(drainSeconds, 2),
      summary,
      error,
      balance: bal,
      strikes,
      progress,
      hostile,
      proxy: proxy.stats(),
      workerStarts: workers.starts,
      workerKills: workers.kills,
      startFailures: workers.startFailures,
      neverStarted: workers.neverStarted,
    };
  } finally {
    await Promise.all(workers.live.map((w) => w.kill('SIGTERM')));
    await client?.connection.close().catch(() => {});
    await proxy.close();
    admin.destroy();
  }
}

/**
 * The CLI's own ingest code; when the Temporal server is killed under it, attach to the
 * same workflow again (never start a second one) until it has a result.
 */
async function ingestThroughFaults(client: Client, config: Config, deadline: number, log: Log): Promise<IngestSummary> {
  const timeout = () =>
    sleep(Math.max(0, deadline - Date.now())).then(() => {
      throw new Error(`the ingest did not finish within the run's timeout (--timeout)`);
    });
  const attempt = async (): Promise<IngestSummary> => {
    try {
      return (await runIngest(client, config, optionsFromConfig(config.ingest))).summary;
    } catch (err) {
      if (err instanceof WorkflowFailedError) throw err;
      log(`    ingest client: ${(err as Error).message.split('\n')[0]}; attaching again`);
    }
    for (let i = 0; Date.now() < deadline; i++) {
      await sleep(1000);
      try {
        return (await client.workflow.getHandle(config.ingest.workflowId).result()) as IngestSummary;
      } catch (err) {
        if (err instanceof WorkflowFailedError) throw err;
        if (i % 5 === 0) log(`    ingest client: ${(err as Error).message.split('\n')[0]}; attaching again`);
      }
    }
    throw new Error("the ingest did not finish within the run's timeout (--timeout)");
  };
  return Promise.race([attempt(), timeout()]);
}

async function checkHostile(
  databaseUrl: string,
  expected: { id: string; kind: string; reason: string }[],
): Promise<RunResult['hostile']> {
  const pg = new PgClient({ connectionString: databaseUrl });
  await pg.connect();
  try {
    const { rows } = await pg.query<{ message_id: string; reasons: string[] }>(
      'SELECT message_id, reasons FROM quarantine WHERE message_id = ANY($1::text[])',
      [expected.map((e) => e.id)],
    );
    const got = new Map(rows.map((r) => [r.message_id, r.reasons]));
    const wrong = expected
      .filter((e) => !got.get(e.id)?.includes(e.reason))
      .map((e) => ({ kind: e.kind, reason: e.reason, got: got.get(e.id) ?? null }));
    return { total: expected.length, wrong };
  } finally {
    await pg.end();
  }
}

/** Services, the baseline (no faults), the faulted run, the verdict. */
export async function runChaos(o: ChaosOptions, log: Log = (l) => console.error(l)): Promise<ChaosReport> {
  const messages = chaosMessages(o);
  log(
    `Chaos: ${o.messages} messages (seed ${o.seed}; ${messages.hostile.length} hostile), ${o.workers} worker(s), faults ${o.faults.join(', ') || 'none'} at ${o.at.map((a) => `${Math.round(a * 100)}%`).join(', ')}`,
  );
  const services = await startChaosServices(log);
  try {
    const id = crypto.randomBytes(3).toString('hex');
    let baseline: RunResult | null = null;
    if (o.baseline) {
      log('Baseline run (no faults) …');
      baseline = await runScenario({ tag: `base_${id}`, services, options: o, messages, faults: [], at: [], log });
      log(`  drained in ${baseline.drainSeconds} s; balanced: ${baseline.balance.balanced}`);
    }
    log('Faulted run …');
    const faulted = await runScenario({ tag: `chaos_${id}`, services, options: o, messages, faults: o.faults, at: o.at, log });
    log(`  drained in ${faulted.drainSeconds} s; balanced: ${faulted.balance.balanced}`);
    return judge(o, faulted, baseline);
  } finally {
    await services.stop();
  }
}
