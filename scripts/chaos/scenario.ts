// One chaos scenario: real services of its own (Temporal dev server on an SQLite file and a
// fixed port, embedded PostgreSQL on a persistent scratch directory, the SQS emulator in
// its own process behind a fault-injecting proxy), worker processes as users run them, an
// ingest through the CLI's own code, faults struck at shares of the queue gone, and the
// balance. `npm run chaos` (scripts/chaos.ts) and test/integration/chaos.test.ts run it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { Client as PgClient } from 'pg';
import { loadConfig, type Config } from '../../lib/platform/config';
import { optionsFromConfig, runIngest } from '../../cli/ingest-run';
import { LocalKeyWrapper } from '../../lib/pii/kek';
import { initKeyringFile, loadKeyring, type Keyring } from '../../lib/pii/keyring';
import { generateBodies, random } from '../../lib/ingest/load';
import { createSqsClient, getApproximateCounts, sendMessages } from '../../lib/ingest/sqs';
import { connectClient } from '../../lib/platform/temporal';
import type { QueueDepth } from '../../lib/contract/types';
import type { IngestSummary } from '../../lib/contract/types';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../services/postgres';
import { startSqsProcess, type EmbeddedSqsHandle } from '../../services/sqs';
import { freePort } from '../../services/ports';
import { findOrInstallTemporalCli } from '../../services/temporal-cli';
import { startTemporalDevServer, type TemporalDevServer } from '../../services/temporal-dev-server';
import { balance, createQueue, freshDatabase, ROOT, startWorkerProcess, type Balance, type WorkerProcess } from '../harness';
import { hostileBodies } from './hostile';
import type { ChaosOptions, Fault } from './options';
import { startSqsProxy, type SqsProxy } from './proxy';

type Log = (line: string) => void;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

// ---------------------------------------------------------------------------------------
// Services that can be struck
// ---------------------------------------------------------------------------------------

export interface ChaosServices {
  scratch: string;
  temporalAddress: string;
  pg: EmbeddedPostgresHandle;
  sqs: EmbeddedSqsHandle;
  /** SIGKILL the Temporal server, wait, start it again on the same SQLite file and port. */
  killTemporal(downMs: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startChaosServices(log: Log): Promise<ChaosServices> {
  // The emulator accepts any credentials; the SDK's default chain reads these.
  process.env.AWS_ACCESS_KEY_ID ??= 'chaos';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'chaos';
  const base = loadConfig({ ...process.env, LOG_LEVEL: 'WARN' }, []);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'login-ingest-chaos-'));
  fs.chmodSync(scratch, 0o755); // as root, PostgreSQL runs as the postgres user
  const stops: (() => Promise<void>)[] = [];
  try {
    const cliPath = await findOrInstallTemporalCli({ configuredPath: base.embedded.temporalCliPath, installDir: path.join(path.resolve(ROOT, base.dataDir), 'bin'), log });
    const port = await freePort();
    const temporalOpts = { cliPath, port, uiPort: null, dbFilename: path.join(scratch, 'temporal.sqlite'), namespace: base.temporal.namespace, logFile: path.join(scratch, 'temporal.log') };
    let temporal: TemporalDevServer = await startTemporalDevServer(temporalOpts);
    stops.push(() => temporal.stop());
    const pg = await startEmbeddedPostgres({ dir: path.join(scratch, 'postgres'), port: await freePort(), persistent: true, log });
    stops.push(() => pg.stop());
    const sqs = await startSqsProcess({ port: await freePort(), region: base.sqs.region });
    stops.push(() => sqs.stop());
    return {
      scratch,
      temporalAddress: temporal.address,
      pg,
      sqs,
      async killTemporal(downMs) {
        process.kill(temporal.pid, 'SIGKILL');
        await temporal.stop();
        await sleep(downMs);
        temporal = await startTemporalDevServer(temporalOpts);
      },
      async stop() {
        for (const stop of stops.reverse()) await stop().catch(() => {});
        fs.rmSync(scratch, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    fs.rmSync(scratch, { recursive: true, force: true });
    throw err;
  }
}

// ---------------------------------------------------------------------------------------
// The messages
// ---------------------------------------------------------------------------------------

export interface Messages {
  bodies: string[];
  /** Index of each hostile body, with the reason it must be quarantined with. */
  hostile: { index: number; kind: string; reason: string }[];
}

export function chaosMessages(o: Pick<ChaosOptions, 'messages' | 'seed' | 'malformedShare' | 'duplicateShare' | 'hostileShare'>): Messages {
  const rnd = random(o.seed ^ 0x5eed);
  const nHostile = Math.round(o.messages * o.hostileShare);
  const bodies = generateBodies(o.messages - nHostile, { malformedShare: o.malformedShare, duplicateShare: o.duplicateShare, seed: o.seed });
  const slots = new Set<number>();
  while (slots.size < nHostile) slots.add(Math.floor(rnd() * o.messages));
  const hostile = hostileBodies(nHostile, rnd);
  const out: string[] = [];
  const placed: Messages['hostile'] = [];
  let g = 0;
  let h = 0;
  for (let i = 0; i < o.messages; i++) {
    if (slots.has(i)) {
      placed.push({ index: i, kind: hostile[h].kind, reason: hostile[h].reason });
      out.push(hostile[h++].body);
    } else out.push(bodies[g++]);
  }
  return { bodies: out, hostile: placed };
}

// ---------------------------------------------------------------------------------------
// One run
// ---------------------------------------------------------------------------------------

export interface Strike {
  fault: Fault;
  /** The share it was to strike at, and the share gone when it did. */
  at: number;
  share: number;
  /** Queue depth when it struck (visible + in flight). */
  depth: QueueDepth;
  /** Seconds since the ingest started. */
  struckAt: number;
  recoveredAt: number;
  detail: string;
  /** It struck an empty queue: it tested nothing. */
  empty: boolean;
}

export interface RunResult {
  drainSeconds: number;
  summary: IngestSummary | null;
  error: string | null;
  balance: Balance;
  strikes: Strike[];
  /** (seconds since start, share of the queue gone), sampled. */
  progress: [number, number][];
  hostile: { total: number; wrong: { kind: string; reason: string; got: string[] | null }[] };
  proxy: ReturnType<SqsProxy['stats']>;
  workerStarts: number;
  workerKills: number;
  /** Failed starts of replacement workers (each retried, as a process supervisor would). */
  startFailures: string[];
  /** Replacement workers that never started. */
  neverStarted: string[];
}

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
  const admin: SQSClient = createSqsClient(loadConfig({ ...common, AWS_ENDPOINT_URL_SQS: services.sqs.endpoint, SQS_QUEUE_URL: services.sqs.queueUrl }).sqs);
  const queueUrl = await createQueue(admin, tag);
  const proxy = await startSqsProxy({ upstream: services.sqs.endpoint, admin, redeliverShare: o.redeliverShare, rnd: random(o.seed + 1) });
  const env: NodeJS.ProcessEnv = { ...common, SQS_QUEUE_URL: queueUrl, AWS_ENDPOINT_URL_SQS: proxy.endpoint };
  const config: Config = loadConfig(env);
  const keyring: Keyring = await loadKeyring(config, () => {});
  const workers: WorkerProcess[] = [];
  let workerStarts = 0;
  let workerKills = 0;
  let client: Client | null = null;
  try {
    const sentIds = await sendMessages(admin, queueUrl, messages.bodies);
    const total = sentIds.length;
    for (let i = 0; i < o.workers; i++) workers.push(await startWorkerProcess(env));
    workerStarts += o.workers;
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

    const strikes: Strike[] = [];
    const starting: Promise<void>[] = [];
    const startFailures: string[] = [];
    const neverStarted: string[] = [];
    const striker = (async () => {
      for (let i = 0; i < faults.length; i++) {
        while (gone < at[i] && !done && Date.now() < deadline) await sleep(50);
        const d = await getApproximateCounts(admin, queueUrl).catch(() => depth);
        const share = 1 - (d.visible + d.inFlight) / total;
        const struckAt = since();
        log(`  fault ${i + 1}/${faults.length} ${faults[i]} at ${Math.round(share * 100)}% gone (wanted ${Math.round(at[i] * 100)}%): queue depth ${d.visible} visible + ${d.inFlight} in flight`);
        let detail = '';
        switch (faults[i]) {
          case 'kill': {
            // Among the live workers; the replacement starts meanwhile, and the next fault need not wait for it.
            for (let w = 0; !workers.length && w < 1200 && Date.now() < deadline; w++) await sleep(50);
            const k = Math.floor(rnd() * workers.length);
            const [victim] = workers.splice(k, 1);
            await victim.kill('SIGKILL');
            workerKills++;
            const killedAt = since();
            starting.push(
              superviseStart(env, deadline, (msg) => {
                startFailures.push(msg);
                log(`    replacement worker failed to start (${msg.split('\n').pop()}); starting it again, as a process supervisor would`);
              }).then(
                (w) => {
                  workers.push(w);
                  workerStarts++;
                  log(`    replacement worker pid ${w.pid} polling ${round(since() - killedAt)} s after the kill`);
                },
                (err: Error) => void neverStarted.push(err.message),
              ),
            );
            detail = `worker pid ${victim.pid} (of ${workers.length + 1} live) SIGKILLed; a replacement started`;
            break;
          }
          case 'pg':
            await services.pg.pause();
            await sleep(o.pgDownSeconds * 1000);
            await services.pg.resume();
            detail = `PostgreSQL stopped for ${o.pgDownSeconds} s`;
            break;
          case 'sqs':
            proxy.setMode(o.sqsMode, o.sqsDelayMs);
            await sleep(o.sqsWindowSeconds * 1000);
            proxy.setMode('pass');
            detail = `SQS endpoint ${o.sqsMode === 'slow' ? `slowed by ${o.sqsDelayMs} ms a request` : o.sqsMode === 'fail' ? 'answering 500' : 'resetting connections'} for ${o.sqsWindowSeconds} s`;
            break;
          case 'temporal':
            await services.killTemporal(o.temporalDownSeconds * 1000);
            detail = `Temporal server SIGKILLed, restarted on its SQLite file after ${o.temporalDownSeconds} s`;
            break;
        }
        const recoveredAt = since();
        log(`    ${detail}; back after ${round(recoveredAt - struckAt)} s`);
        strikes.push({ fault: faults[i], at: at[i], share: round(share, 4), depth: d, struckAt: round(struckAt, 2), recoveredAt: round(recoveredAt, 2), detail, empty: d.visible + d.inFlight === 0 });
      }
    })();

    let summary: IngestSummary | null = null;
    let error: string | null = null;
    try {
      summary = await ingestThroughFaults(client, config, deadline, log);
    } catch (err) {
      error = (err as Error).message;
    }
    const drainSeconds = since();
    done = true;
    await Promise.all([monitor, striker]);
    await Promise.allSettled(starting);

    const bal = await balance(config.databaseUrl, admin, queueUrl, sentIds);
    const hostile = await checkHostile(config.databaseUrl, messages.hostile.map((h) => ({ ...h, id: sentIds[h.index] })));
    return { drainSeconds: round(drainSeconds, 2), summary, error, balance: bal, strikes, progress, hostile, proxy: proxy.stats(), workerStarts, workerKills, startFailures, neverStarted };
  } finally {
    await Promise.all(workers.map((w) => w.kill('SIGTERM')));
    await client?.connection.close().catch(() => {});
    await proxy.close();
    admin.destroy();
  }
}

/** worker.ts started again until it polls (it exits when, say, PostgreSQL is away at its start), every 2 s, 15 times at most. */
async function superviseStart(env: NodeJS.ProcessEnv, deadline: number, failed: (msg: string) => void): Promise<WorkerProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startWorkerProcess(env);
    } catch (err) {
      const lines = (err as Error).message.split('\n').filter((l) => l.trim() && !/AWS SDK for JavaScript|first week of January 2027|node >=22|To continue receiving|security updates please|a\.co\/|trace-warnings/.test(l));
      const msg = lines.slice(-3).join('\n');
      if (attempt >= 15 || Date.now() > deadline) throw new Error(msg);
      failed(msg);
      await sleep(2000);
    }
  }
}

/**
 * The CLI's own ingest code; when the Temporal server is killed under it, attach to the
 * same workflow again (never start a second one) until it has a result.
 */
async function ingestThroughFaults(client: Client, config: Config, deadline: number, log: Log): Promise<IngestSummary> {
  const timeout = () => sleep(Math.max(0, deadline - Date.now())).then(() => {
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
    throw new Error('the ingest did not finish within the run\'s timeout (--timeout)');
  };
  return Promise.race([attempt(), timeout()]);
}

async function checkHostile(databaseUrl: string, expected: { id: string; kind: string; reason: string }[]): Promise<RunResult['hostile']> {
  const pg = new PgClient({ connectionString: databaseUrl });
  await pg.connect();
  try {
    const { rows } = await pg.query<{ message_id: string; reasons: string[] }>('SELECT message_id, reasons FROM quarantine WHERE message_id = ANY($1::text[])', [expected.map((e) => e.id)]);
    const got = new Map(rows.map((r) => [r.message_id, r.reasons]));
    const wrong = expected
      .filter((e) => !got.get(e.id)?.includes(e.reason))
      .map((e) => ({ kind: e.kind, reason: e.reason, got: got.get(e.id) ?? null }));
    return { total: expected.length, wrong };
  } finally {
    await pg.end();
  }
}

// ---------------------------------------------------------------------------------------
// The verdict
// ---------------------------------------------------------------------------------------

export type Verdict = 'pass' | 'fail' | 'inconclusive';

export interface FaultCost {
  fault: Fault;
  share: number;
  /** Seconds from this strike to the next (or the end), less the baseline's time over the same shares; null for a strike on an empty queue. */
  costSeconds: number | null;
}

export interface ChaosReport {
  verdict: Verdict;
  problems: string[];
  notes: string[];
  messages: number;
  seed: number;
  distinctIds: number;
  hostileMessages: number;
  faulted: RunResult;
  baseline: RunResult | null;
  costSeconds: number | null;
  faultCosts: FaultCost[] | null;
  summaryVsDatabase: { persisted: number; quarantined: number } | null;
}

/** Seconds the baseline took to reach a share of the queue gone. */
function timeAt(progress: [number, number][], share: number, end: number): number {
  const hit = progress.find(([, g]) => g >= share);
  return hit ? hit[0] : end;
}

export function judge(o: ChaosOptions, faulted: RunResult, baseline: RunResult | null): ChaosReport {
  const problems: string[] = [];
  const notes: string[] = [];
  const b = faulted.balance;
  for (const f of faulted.neverStarted) problems.push(`a replacement worker never started: ${f}`);
  if (faulted.startFailures.length) {
    notes.push(`${faulted.startFailures.length} start(s) of a replacement worker failed and were retried; the last said: ${faulted.startFailures[faulted.startFailures.length - 1].split('\n').slice(-2).join(' ')}`);
  }
  if (faulted.error) problems.push(`the ingest did not finish: ${faulted.error}`);
  if (b.rows + b.quarantine !== b.distinctSent) problems.push(`rows (${b.rows}) + quarantine (${b.quarantine}) = ${b.rows + b.quarantine}, but ${b.distinctSent} distinct message IDs were sent`);
  if (b.ledger !== b.distinctSent) problems.push(`the ledger holds ${b.ledger} IDs for ${b.distinctSent} sent`);
  if (b.storedTwice) problems.push(`${b.storedTwice} message ID(s) stored twice`);
  if (b.left.visible + b.left.inFlight) problems.push(`the queue is not empty: ${b.left.visible} visible, ${b.left.inFlight} in flight`);
  if (faulted.hostile.wrong.length) {
    const kinds = [...new Set(faulted.hostile.wrong.map((w) => `${w.kind} (wanted ${w.reason}, got ${w.got ? w.got.join(',') : 'no quarantine entry'})`))];
    problems.push(`${faulted.hostile.wrong.length} of ${faulted.hostile.total} hostile message(s) not quarantined with their reason: ${kinds.slice(0, 5).join('; ')}`);
  }
  const s = faulted.summary;
  let summaryVsDatabase: ChaosReport['summaryVsDatabase'] = null;
  if (s) {
    if (s.stopReason !== 'queue_empty') problems.push(`the ingest stopped with ${s.stopReason}, not queue_empty`);
    summaryVsDatabase = { persisted: b.rows - s.persisted, quarantined: b.quarantine - s.quarantined };
    const { persisted, quarantined } = summaryVsDatabase;
    // Exact since each claim records its drain attempt: a retry counts a dead attempt's commits from the ledger.
    if (persisted || quarantined) {
      problems.push(`the workflow's summary differs from the database (rows ${b.rows} vs ${s.persisted}, quarantine ${b.quarantine} vs ${s.quarantined})`);
    }
  }
  if (baseline && !baseline.balance.balanced) problems.push(`the baseline run (no faults) does not balance: ${JSON.stringify(baseline.balance)}`);
  const empty = faulted.strikes.filter((x) => x.empty);
  if (faulted.strikes.length < o.faults.length) problems.push(`only ${faulted.strikes.length} of ${o.faults.length} faults struck before the run ended`);

  let faultCosts: FaultCost[] | null = null;
  let costSeconds: number | null = null;
  if (baseline) {
    costSeconds = round(faulted.drainSeconds - baseline.drainSeconds);
    const st = faulted.strikes;
    faultCosts = st.map((x, i) => {
      const nextT = i + 1 < st.length ? st[i + 1].struckAt : faulted.drainSeconds;
      const nextShare = i + 1 < st.length ? st[i + 1].share : 1;
      const base = timeAt(baseline.progress, nextShare, baseline.drainSeconds) - timeAt(baseline.progress, x.share, baseline.drainSeconds);
      return { fault: x.fault, share: x.share, costSeconds: x.empty ? null : round(nextT - x.struckAt - base) };
    });
  }
  const verdict: Verdict = problems.length ? 'fail' : empty.length ? 'inconclusive' : 'pass';
  if (empty.length && !problems.length) notes.push(`${empty.length} fault(s) struck an empty queue and tested nothing: ${empty.map((x) => x.fault).join(', ')}`);
  return {
    verdict, problems, notes, messages: o.messages, seed: o.seed, distinctIds: b.distinctSent, hostileMessages: faulted.hostile.total,
    faulted, baseline, costSeconds, faultCosts, summaryVsDatabase,
  };
}

/** Services, the baseline (no faults), the faulted run, the verdict. */
export async function runChaos(o: ChaosOptions, log: Log = (l) => console.error(l)): Promise<ChaosReport> {
  const messages = chaosMessages(o);
  log(`Chaos: ${o.messages} messages (seed ${o.seed}; ${messages.hostile.length} hostile), ${o.workers} worker(s), faults ${o.faults.join(', ') || 'none'} at ${o.at.map((a) => `${Math.round(a * 100)}%`).join(', ')}`);
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
