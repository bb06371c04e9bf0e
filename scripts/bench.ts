// `npm run bench`: the pipeline against fair yardsticks, on the same services, in one run.
//
//   npm run bench -- [--messages 50000] [--runs 5] [--workers 1,2,4] [--json FILE]
//                    [--batch-size N] [--concurrency N] [--threads N] [--compiled]
//                    [--sqs-latency-ms N]
//
// Each run, for each worker count: a fresh queue and database; the raw drain (a plain
// receive-and-delete loop in a process of its own, 8 pollers in each of nproc threads,
// against the emulator in a process of its own) before and after the pipeline, the faster
// counting; raw PostgreSQL inserts (plain SQL, the same table and indexes) beside the
// pipeline's own persist step at the same concurrency; the pipeline end to end (worker
// processes as users run them, `worker.ts`, started by `client.ts`'s own ingest code). A
// pipeline run counts only if it balances: rows + quarantine = distinct IDs sent, queue empty.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client as PgClient } from 'pg';
import { loadConfig, type Config } from '../lib/platform/config';
import { optionsFromConfig, runIngest } from '../cli/ingest-run';
import { LocalKeyWrapper } from '../lib/pii/kek';
import { initKeyringFile, loadKeyring, type Keyring } from '../lib/pii/keyring';
import { generateBodies } from '../lib/ingest/load';
import { createSqsClient, getApproximateCounts, sendMessages } from '../lib/ingest/sqs';
import { connectClient } from '../lib/platform/temporal';
import { startServices, type RunningServices } from '../services';
import { createQueue, freshDatabase, ROOT, startWorkers, type WorkerEntry } from './harness';
import { readBenchArgs } from './bench/args';
import { startSqsProxy } from './chaos/proxy';
import { cpuMeter, historySize, sampleRss, serverProcesses, threadMeter } from './bench/meters';
import { printSummary, round, summarize } from './bench/report';
import { bareDrain, persistVsRaw, rawDrain, writeBareKeys } from './bench/yardsticks';

async function main() {
  process.env.AWS_ACCESS_KEY_ID ??= 'bench';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'bench';
  const { messages, runs, workerCounts, jsonFile, ingestEnv, entry, sqsLatencyMs } = readBenchArgs();
  if (entry === 'compiled') buildDist();
  const quiet = { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'WARN' };
  const base = loadConfig(quiet, []);
  const services = await startServices(base, { ephemeral: true, log: () => {}, sqsProcess: true });
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'login-ingest-bench-'));
  try {
    const masterKey = crypto.randomBytes(32).toString('base64');
    const keyFile = path.join(scratch, 'keyring.json');
    await initKeyringFile(keyFile, new LocalKeyWrapper(Buffer.from(masterKey, 'base64')));
    const common = {
      ...quiet,
      TEMPORAL_ADDRESS: services.temporalAddress,
      AWS_ENDPOINT_URL_SQS: services.sqsEndpoint,
      AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
      PII_KEYRING_FILE: keyFile,
      PII_MASTER_KEY: masterKey,
      DATA_DIR: scratch,
      ...ingestEnv,
    };
    const admin = createSqsClient(
      loadConfig({ ...common, SQS_QUEUE_URL: services.sqsQueueUrl, DATABASE_URL: services.databaseUrl }).sqs,
    );
    const keyring = await loadKeyring(loadConfig({ ...common, DATABASE_URL: services.databaseUrl }, ['database']), () => {});
    // --sqs-latency-ms: every SQS call of the yardsticks and the workers (not the loading) waits that long in a proxy first,
    // as a call to AWS takes milliseconds where the emulator answers in microseconds.
    const proxy = sqsLatencyMs
      ? await startSqsProxy({ upstream: services.sqsEndpoint, admin, redeliverShare: 0, rnd: Math.random })
      : null;
    proxy?.setMode('slow', sqsLatencyMs);
    const sqsEndpoint = proxy?.endpoint ?? services.sqsEndpoint;
    common.AWS_ENDPOINT_URL_SQS = sqsEndpoint;
    const bodies = generateBodies(messages, { malformedShare: 0.01, duplicateShare: 0.05, seed: 42 });
    const figures: Record<string, unknown>[] = [];
    const bareKeys = writeBareKeys(scratch, keyring);
    const bench: Bench = { messages, bodies, services, common, admin, keyring, bareKeys, entry, sqsEndpoint };

    for (let run = 1; run <= runs; run++) {
      for (const workers of workerCounts)
        figures.push(await measureRun(bench, { run, workers, firstWorkers: workers === workerCounts[0] }));
    }

    const summary = summarize(figures, workerCounts, runs);
    const report = {
      node: process.version,
      cores: os.availableParallelism(),
      messages,
      sqsLatencyMs,
      options: optionsFromConfig(loadConfig({ ...common, SQS_QUEUE_URL: 'http://x/q', DATABASE_URL: 'postgresql://x/y' }).ingest),
      summary,
      runs: figures,
    };
    printSummary(summary, messages);
    if (jsonFile) fs.writeFileSync(jsonFile, JSON.stringify(report, null, 2));
    await proxy?.close();
    admin.destroy();
  } finally {
    await services.stop();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** What every run of one benchmark shares: the messages, the services, the environment, an SQS admin client, the keys. */
interface Bench {
  messages: number;
  bodies: string[];
  services: RunningServices;
  common: NodeJS.ProcessEnv;
  admin: ReturnType<typeof createSqsClient>;
  keyring: Keyring;
  /** The keys file the bare pipeline reads. */
  bareKeys: string;
  entry: WorkerEntry;
  /** Where the yardsticks and the workers send their SQS calls: the emulator, or the latency proxy in front of it. */
  sqsEndpoint: string;
}

/** `npm run build`, so that `--compiled` measures the code as it is now. */
function buildDist(): void {
  const built = spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  if (built.status !== 0) throw new Error('npm run build failed (above); --compiled needs dist/worker.js');
}

/** One run at one worker count: the raw drain before and after, the pipeline end to end with its balance, and (at the first worker count) persist against plain SQL. */
async function measureRun(
  { messages, bodies, services, common, admin, keyring, bareKeys, entry, sqsEndpoint }: Bench,
  { run, workers, firstWorkers }: { run: number; workers: number; firstWorkers: boolean },
): Promise<Record<string, unknown>> {
  const tag = `b${run}w${workers}_${crypto.randomBytes(3).toString('hex')}`;
  const queueUrl = await createQueue(admin, tag);
  const database = await freshDatabase(services, tag);
  const env = {
    ...common,
    SQS_QUEUE_URL: queueUrl,
    DATABASE_URL: database.app,
    DATABASE_OWNER_URL: database.owner,
    TEMPORAL_TASK_QUEUE: `tq-${tag}`,
    INGEST_WORKFLOW_ID: `ingest-${tag}`,
  };
  const config: Config = loadConfig(env);

  const emulator = [services.sqsPid!];
  const postgres = () => serverProcesses(new URL(services.databaseUrl).port);
  await sendMessages(admin, queueUrl, bodies);
  const rawCpu = cpuMeter({ emulator });
  const before = await rawDrain(sqsEndpoint, queueUrl);
  const rawBefore = before.rate;
  const rawCpuSeconds = { ...rawCpu(), drain: round(before.cpuSeconds, 2) };

  // The bare pipeline, before and after the ingest (the faster counting), into a database of its own.
  const bareDb = (await freshDatabase(services, `${tag}_bare`)).app;
  const bare = async () => {
    await sendMessages(admin, queueUrl, bodies);
    const meter = cpuMeter({ emulator, postgres });
    const r = await bareDrain(sqsEndpoint, queueUrl, bareDb, bareKeys);
    return { ...r, cpu: { ...meter(), pipeline: round(r.cpuSeconds, 2) } };
  };
  const bareBefore = await bare();

  const sentIds = await sendMessages(admin, queueUrl, bodies);
  const pool = await startWorkers(
    workers,
    env,
    process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [],
    entry,
  );
  const peakRss = sampleRss(pool.pids);
  const client = await connectClient(config.temporal, keyring);
  const cpu = cpuMeter({
    workers: pool.pids,
    emulator,
    postgres,
    temporal: serverProcesses(services.temporalAddress.split(':').pop()!),
  });
  const threads = pool.pids.map(threadMeter);
  const t = performance.now();
  const ingest = await runIngest(client, config, optionsFromConfig(config.ingest));
  const seconds = (performance.now() - t) / 1000;
  const rss = peakRss();
  const pipelineCpuSeconds = cpu();
  const workerThreadCpuSeconds = threads.map((m) => m());
  await pool.stop();
  const history = await historySize(client, config.ingest.workflowId);
  await client.connection.close();

  // The balance: every distinct ID sent is one row or one quarantine entry, and the queue is empty.
  const pg = new PgClient({ connectionString: config.databaseUrl });
  await pg.connect();
  const {
    rows: [db],
  } = await pg.query<{ rows: number; quarantine: number; ledger: number }>(
    `SELECT (SELECT count(*) FROM user_logins)::int AS rows, (SELECT count(*) FROM quarantine)::int AS quarantine, (SELECT count(*) FROM ingested_messages)::int AS ledger`,
  );
  await pg.end();
  const left = await getApproximateCounts(admin, queueUrl);
  const distinct = new Set(sentIds).size;
  const balanced = db.rows + db.quarantine === distinct && db.ledger === distinct && left.visible + left.inFlight === 0;

  const bareAfter = await bare();
  await sendMessages(admin, queueUrl, bodies);
  const rawAfter = (await rawDrain(sqsEndpoint, queueUrl)).rate;
  const persist = firstWorkers
    ? await persistVsRaw(
        services,
        `${tag}_p`,
        keyring,
        bodies,
        config.ingest.batchSize,
        config.worker.drainThreads * config.ingest.commitsInFlight,
      )
    : null;

  const raw = Math.max(rawBefore, rawAfter);
  const bareBest = bareBefore.rate >= bareAfter.rate ? bareBefore : bareAfter;
  const rate = ingest.summary.received / seconds;
  const per10k = (cpu: Record<string, number>, n: number) => {
    const out = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, round((v / n) * 10_000, 2)]));
    return { ...out, total: round((Object.values(cpu).reduce((a, b) => a + b, 0) / n) * 10_000, 2) };
  };
  const bareCpuPer10k = per10k(bareBest.cpu, bareBest.drained);
  const pipelineCpuPer10k = per10k(pipelineCpuSeconds, ingest.summary.received);
  const s = ingest.summary;
  const f = {
    run,
    workers,
    messages,
    balanced,
    rawDrainPerSecond: round(raw),
    rawBefore: round(rawBefore),
    rawAfter: round(rawAfter),
    pipelinePerSecond: round(rate),
    seconds: round(seconds, 2),
    ratio: round(rate / raw, 3),
    barePerSecond: round(bareBest.rate),
    bareBefore: round(bareBefore.rate),
    bareAfter: round(bareAfter.rate),
    bareRatio: round(bareBest.rate / raw, 3),
    ratioToBare: round(rate / bareBest.rate, 3),
    bareBalanced: bareBefore.drained === messages && bareAfter.drained === messages,
    ...(persist && {
      rawPgRowsPerSecond: round(persist.raw.rate),
      persistRowsPerSecond: round(persist.viaAdapter.rate),
      persistRatio: round(persist.viaAdapter.rate / persist.raw.rate, 3),
      persistViaClientRowsPerSecond: round(persist.viaPrismaClient.rate),
      persistClientCpuPer10k: {
        rawPg: round(persist.raw.cpuPer10k, 3),
        adapter: round(persist.viaAdapter.cpuPer10k, 3),
        prismaClient: round(persist.viaPrismaClient.cpuPer10k, 3),
      },
    }),
    worker: entry,
    workerPeakRssMiB: round(rss / 2 ** 20),
    historyEventsPer10k: round((history.events / s.received) * 10_000, 1),
    historyBytesPer10k: round((history.bytes / s.received) * 10_000),
    historyRuns: history.runs,
    cpuSeconds: { rawDrain: rawCpuSeconds, bare: bareBest.cpu, pipeline: pipelineCpuSeconds },
    cpuSecondsPer10k: { bare: bareCpuPer10k, pipeline: pipelineCpuPer10k },
    workerThreadCpuSeconds,
    cpuRatioToBare: round(pipelineCpuPer10k.total / bareCpuPer10k.total, 3),
    stageMsPerMessage: Object.fromEntries(Object.entries(s.stageMs).map(([k, v]) => [k, round(v / s.received, 3)])),
    received: s.received,
    persisted: s.persisted,
    quarantined: s.quarantined,
    alreadySeen: s.alreadySeen,
    drains: s.slices,
    commits: s.commits,
  };
  console.error(JSON.stringify(f));
  if (!balanced)
    console.error(
      `run ${run} (${workers} worker(s)) does not balance: ${JSON.stringify({ db, distinct, left })}; it does not count`,
    );
  return f;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
