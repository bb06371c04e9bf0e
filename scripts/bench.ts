// `npm run bench`: the pipeline against fair yardsticks, on the same services, in one run.
//
//   npm run bench -- [--messages 50000] [--runs 5] [--workers 1,2,4] [--json FILE]
//                    [--batch-size N] [--concurrency N] [--threads N]
//
// Each run, for each worker count: a fresh queue and database; the raw drain (a plain
// receive-and-delete loop in a process of its own, 8 pollers in each of nproc threads,
// against the emulator in a process of its own) before and after the pipeline, the faster
// counting; raw PostgreSQL inserts (plain SQL, the same table and indexes) beside the
// pipeline's own persist step at the same concurrency; the pipeline end to end (worker
// processes as users run them, `worker.ts`, started by `client.ts`'s own ingest code). A
// pipeline run counts only if it balances: rows + quarantine = distinct IDs sent, queue empty.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client as PgClient } from 'pg';
import { temporal } from '@temporalio/proto';
import { loadConfig, type Config } from '../lib/platform/config';
import { createDb } from '../lib/platform/db';
import { optionsFromConfig, runIngest } from '../cli/ingest-run';
import { LocalKeyWrapper } from '../lib/pii/kek';
import { initKeyringFile, loadKeyring, type Keyring } from '../lib/pii/keyring';
import { generateBodies } from '../lib/ingest/load';
import { insertChunk } from '../lib/ingest/persist';
import { createSqsClient, getApproximateCounts, sendMessages, toReceived } from '../lib/ingest/sqs';
import { connectClient } from '../lib/platform/temporal';
import { transformBatch } from '../lib/pipeline/transform';
import type { TransformedBatch } from '../lib/contract/types';
import { startServices } from '../services';
import { createQueue, freshDatabase, ROOT, startWorkers } from './harness';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const num = (name: string, fallback: number) => {
  const v = Number(arg(name, String(fallback)));
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} must be a whole number (got ${arg(name, '')})`);
  return v;
};
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const spread = (xs: number[]) => [Math.min(...xs), Math.max(...xs)];
const round = (x: number, d = 0) => Math.round(x * 10 ** d) / 10 ** d;

function runNode(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args[0]} exited with code ${code}`))));
  });
}

/** The raw drain's rate, and the CPU seconds its process spent. */
async function rawDrain(endpoint: string, queueUrl: string): Promise<{ rate: number; cpuSeconds: number }> {
  const out = await runNode([path.join(__dirname, 'bench', 'raw-drain.ts'), endpoint, queueUrl, String(os.availableParallelism()), '8']);
  const { drained, seconds, cpuSeconds } = JSON.parse(out.trim().split('\n').pop()!) as { drained: number; seconds: number; cpuSeconds: number };
  return { rate: drained / seconds, cpuSeconds };
}

/** Plain SQL, no ORM: the same rows into the same table and indexes, unnest arrays, bytea as bytes. */
async function rawInsert(pg: PgClient, batch: TransformedBatch): Promise<void> {
  const r = batch.rows;
  const c = <T>(f: (x: (typeof r)[number]) => T) => r.map(f);
  await pg.query(
    `INSERT INTO user_logins (message_id, user_id, device_type, masked_ip, masked_device_id, ip_ciphertext, device_id_ciphertext,
       pii_key_id, locale, app_version, app_version_major, app_version_minor, app_version_patch, login_fingerprint, create_date)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::bytea[], $8::text[], $9::text[],
       $10::text[], $11::int[], $12::int[], $13::int[], $14::text[], $15::timestamptz[])`,
    [
      c((x) => x.messageId), c((x) => x.userId), c((x) => x.deviceType), c((x) => x.maskedIp), c((x) => x.maskedDeviceId),
      c((x) => Buffer.from(x.ipCiphertext, 'base64')), c((x) => Buffer.from(x.deviceIdCiphertext, 'base64')), c((x) => x.piiKeyId),
      c((x) => x.locale), c((x) => x.appVersion), c((x) => x.appVersionMajor), c((x) => x.appVersionMinor), c((x) => x.appVersionPatch),
      c((x) => x.loginFingerprint), c((x) => x.createDate),
    ],
  );
}

/** Rows a second, `lanes` connections each inserting its share of the chunks one after another. */
async function insertRate(chunks: TransformedBatch[], lanes: number, insert: (lane: number, chunk: TransformedBatch) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      while (next < chunks.length) await insert(lane, chunks[next++]);
    }),
  );
  return chunks.reduce((n, c) => n + c.rows.length + c.quarantine.length, 0) / ((performance.now() - started) / 1000);
}

/** The persist step alone, the pipeline's own function through Prisma, against plain SQL on the same data and concurrency. */
async function persistVsRaw(services: { ownerDatabaseUrl?: string; databaseUrl: string }, tag: string, keyring: Keyring, bodies: string[], chunkSize: number, lanes: number) {
  const messages = bodies.map((Body, i) => toReceived({ MessageId: `${tag}-${i}`, ReceiptHandle: 'x', Body, Attributes: { SentTimestamp: String(Date.now()) } }));
  const chunks: TransformedBatch[] = [];
  for (let i = 0; i < messages.length; i += chunkSize) chunks.push(transformBatch(keyring, messages.slice(i, i + chunkSize)));
  const rowsOnly = chunks.map((c) => ({ rows: c.rows, quarantine: [] }));

  const rawUrl = (await freshDatabase(services, `${tag}_raw`)).app;
  const pgs = await Promise.all(Array.from({ length: lanes }, async () => {
    const pg = new PgClient({ connectionString: rawUrl });
    await pg.connect();
    return pg;
  }));
  const raw = await insertRate(rowsOnly, lanes, (lane, chunk) => rawInsert(pgs[lane], chunk));
  await Promise.all(pgs.map((pg) => pg.end()));

  const db = createDb((await freshDatabase(services, `${tag}_persist`)).app, { maxConnections: lanes });
  const persist = await insertRate(rowsOnly, lanes, async (_, chunk) => void (await insertChunk(db, chunk)));
  await db.$disconnect();
  return { rawRowsPerSecond: raw, persistRowsPerSecond: persist };
}

/** Events and encoded bytes of every run of an ingest (continue-as-new chains them). */
async function historySize(client: Awaited<ReturnType<typeof connectClient>>, workflowId: string) {
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
function sampleRss(pids: number[]) {
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
function serverProcesses(port: string): number[] {
  const all = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
  const roots = all.filter((pid) => readOr(`/proc/${pid}/cmdline`).split('\0').some((arg, i, args) => (arg === '-p' || arg === '--port') && args[i + 1] === port));
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
function cpuMeter(groups: Record<string, number[]>) {
  const start = Object.fromEntries(Object.entries(groups).map(([k, v]) => [k, cpuSeconds(v)]));
  return () => Object.fromEntries(Object.entries(groups).map(([k, v]) => [k, round(cpuSeconds(v) - start[k], 2)]));
}

async function main() {
  process.env.AWS_ACCESS_KEY_ID ??= 'bench';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'bench';
  const messages = num('messages', 50_000);
  const runs = num('runs', 5);
  const workerCounts = arg('workers', '1').split(',').map(Number);
  const jsonFile = arg('json', '');
  if (workerCounts.some((w) => !Number.isInteger(w) || w < 1 || w > 16)) throw new Error('--workers takes whole numbers from 1 to 16, e.g. 1,2,4');
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
      ...(arg('batch-size', '') && { INGEST_BATCH_SIZE: arg('batch-size', '') }),
      ...(arg('concurrency', '') && { INGEST_CONCURRENCY: arg('concurrency', '') }),
      ...(arg('threads', '') && { WORKER_DRAIN_THREADS: arg('threads', '') }),
    };
    const admin = createSqsClient(loadConfig({ ...common, SQS_QUEUE_URL: services.sqsQueueUrl, DATABASE_URL: services.databaseUrl }).sqs);
    const keyring = await loadKeyring(loadConfig({ ...common, DATABASE_URL: services.databaseUrl }, ['database']), () => {});
    const bodies = generateBodies(messages, { malformedShare: 0.01, duplicateShare: 0.05, seed: 42 });
    const figures: Record<string, unknown>[] = [];

    for (let run = 1; run <= runs; run++) {
      for (const workers of workerCounts) {
        const tag = `b${run}w${workers}_${crypto.randomBytes(3).toString('hex')}`;
        const queueUrl = await createQueue(admin, tag);
        const database = await freshDatabase(services, tag);
        const env = { ...common, SQS_QUEUE_URL: queueUrl, DATABASE_URL: database.app, DATABASE_OWNER_URL: database.owner, TEMPORAL_TASK_QUEUE: `tq-${tag}`, INGEST_WORKFLOW_ID: `ingest-${tag}` };
        const config: Config = loadConfig(env);

        const emulator = [services.sqsPid!];
        await sendMessages(admin, queueUrl, bodies);
        const rawCpu = cpuMeter({ emulator });
        const before = await rawDrain(services.sqsEndpoint, queueUrl);
        const rawBefore = before.rate;
        const rawCpuSeconds = { ...rawCpu(), drain: round(before.cpuSeconds, 2) };

        const sentIds = await sendMessages(admin, queueUrl, bodies);
        const pool = await startWorkers(workers, env, process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []);
        const peakRss = sampleRss(pool.pids);
        const client = await connectClient(config.temporal, keyring);
        const cpu = cpuMeter({
          workers: pool.pids,
          emulator,
          postgres: serverProcesses(new URL(services.databaseUrl).port),
          temporal: serverProcesses(services.temporalAddress.split(':').pop()!),
        });
        const t = performance.now();
        const ingest = await runIngest(client, config, optionsFromConfig(config.ingest));
        const seconds = (performance.now() - t) / 1000;
        const rss = peakRss();
        const pipelineCpuSeconds = cpu();
        await pool.stop();
        const history = await historySize(client, config.ingest.workflowId);
        await client.connection.close();

        // The balance: every distinct ID sent is one row or one quarantine entry, and the queue is empty.
        const pg = new PgClient({ connectionString: config.databaseUrl });
        await pg.connect();
        const { rows: [db] } = await pg.query<{ rows: number; quarantine: number; ledger: number }>(
          `SELECT (SELECT count(*) FROM user_logins)::int AS rows, (SELECT count(*) FROM quarantine)::int AS quarantine, (SELECT count(*) FROM ingested_messages)::int AS ledger`,
        );
        await pg.end();
        const left = await getApproximateCounts(admin, queueUrl);
        const distinct = new Set(sentIds).size;
        const balanced = db.rows + db.quarantine === distinct && db.ledger === distinct && left.visible + left.inFlight === 0;

        await sendMessages(admin, queueUrl, bodies);
        const rawAfter = (await rawDrain(services.sqsEndpoint, queueUrl)).rate;
        const persist = workers === workerCounts[0]
          ? await persistVsRaw(services, `${tag}_p`, keyring, bodies, config.ingest.batchSize, config.worker.drainThreads * config.ingest.commitsInFlight)
          : null;

        const raw = Math.max(rawBefore, rawAfter);
        const rate = ingest.summary.received / seconds;
        const s = ingest.summary;
        const f = {
          run, workers, messages, balanced,
          rawDrainPerSecond: round(raw), rawBefore: round(rawBefore), rawAfter: round(rawAfter),
          pipelinePerSecond: round(rate), seconds: round(seconds, 2), ratio: round(rate / raw, 3),
          ...(persist && { rawPgRowsPerSecond: round(persist.rawRowsPerSecond), persistRowsPerSecond: round(persist.persistRowsPerSecond), persistRatio: round(persist.persistRowsPerSecond / persist.rawRowsPerSecond, 3) }),
          workerPeakRssMiB: round(rss / 2 ** 20),
          historyEventsPer10k: round((history.events / s.received) * 10_000, 1), historyBytesPer10k: round((history.bytes / s.received) * 10_000), historyRuns: history.runs,
          cpuSeconds: { rawDrain: rawCpuSeconds, pipeline: pipelineCpuSeconds },
          stageMsPerMessage: Object.fromEntries(Object.entries(s.stageMs).map(([k, v]) => [k, round(v / s.received, 3)])),
          received: s.received, persisted: s.persisted, quarantined: s.quarantined, alreadySeen: s.alreadySeen, drains: s.slices, commits: s.commits,
        };
        figures.push(f);
        console.error(JSON.stringify(f));
        if (!balanced) console.error(`run ${run} (${workers} worker(s)) does not balance: ${JSON.stringify({ db, distinct, left })}; it does not count`);
      }
    }

    const summary = workerCounts.map((workers) => {
      const ok = figures.filter((f) => f.workers === workers && f.balanced) as Record<string, number>[];
      const pick = (k: string) => ok.map((f) => f[k]).filter((v) => typeof v === 'number');
      const stat = (k: string) => (pick(k).length ? { median: round(median(pick(k)), 3), min: spread(pick(k))[0], max: spread(pick(k))[1] } : null);
      return {
        workers, counted: ok.length, of: runs,
        ratio: stat('ratio'), rawDrainPerSecond: stat('rawDrainPerSecond'), pipelinePerSecond: stat('pipelinePerSecond'),
        persistRatio: stat('persistRatio'), workerPeakRssMiB: stat('workerPeakRssMiB'), historyBytesPer10k: stat('historyBytesPer10k'), historyEventsPer10k: stat('historyEventsPer10k'),
      };
    });
    const report = { node: process.version, cores: os.availableParallelism(), messages, options: optionsFromConfig(loadConfig({ ...common, SQS_QUEUE_URL: 'http://x/q', DATABASE_URL: 'postgresql://x/y' }).ingest), summary, runs: figures };
    console.log('');
    for (const s of summary) {
      const fmt = (x: { median: number; min: number; max: number } | null, d = 0) => (x ? `${round(x.median, d)} (${round(x.min, d)}–${round(x.max, d)})` : 'n/a');
      console.log(`${s.workers} worker(s), ${s.counted}/${s.of} balanced runs of ${messages}: pipeline/raw drain ${fmt(s.ratio, 3)}; raw drain ${fmt(s.rawDrainPerSecond)} msg/s; pipeline ${fmt(s.pipelinePerSecond)} msg/s; persist/raw PG ${fmt(s.persistRatio, 3)}; worker peak RSS ${fmt(s.workerPeakRssMiB)} MiB; history ${fmt(s.historyBytesPer10k)} bytes and ${fmt(s.historyEventsPer10k, 1)} events per 10,000 messages`);
    }
    if (jsonFile) fs.writeFileSync(jsonFile, JSON.stringify(report, null, 2));
    admin.destroy();
  } finally {
    await services.stop();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
