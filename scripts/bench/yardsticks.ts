// The benchmark's yardsticks: the raw drain (bench/raw-drain.ts, a plain receive-and-delete
// loop in a process of its own), the bare pipeline (bench/bare-pipeline.ts, the same
// necessary work as the ingest with no durability, in a process of its own) and plain-SQL
// inserts into the same table and indexes beside the pipeline's own persist step, at the
// same concurrency.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client as PgClient } from 'pg';
import { connectRawSql, createDb, viaClient } from '../../lib/platform/db';
import type { Keyring } from '../../lib/pii/keyring';
import { insertChunk } from '../../lib/ingest/persist';
import { toReceived } from '../../lib/ingest/sqs';
import { transformBatch } from '../../lib/pipeline/transform';
import type { TransformedBatch } from '../../lib/contract/types';
import { freshDatabase, ROOT } from '../harness';

function runNode(args: string[], env: NodeJS.ProcessEnv = process.env, onPid: (pid: number) => void = () => {}): Promise<string> {
  return new Promise((resolve, reject) => {
    // BENCH_CPU_PROF=DIR: the yardsticks are profiled like the workers (bench.ts), to compare where each spends its CPU.
    const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
    const child = spawn(process.execPath, [...prof, '-r', 'ts-node/register/transpile-only', ...args], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (child.pid) onPid(child.pid);
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args[0]} exited with code ${code}`))));
  });
}

/** The raw drain's rate, and the CPU seconds its process spent. */
export async function rawDrain(endpoint: string, queueUrl: string): Promise<{ rate: number; cpuSeconds: number }> {
  const out = await runNode([path.join(__dirname, 'raw-drain.ts'), endpoint, queueUrl, String(os.availableParallelism()), '8']);
  const { drained, seconds, cpuSeconds } = JSON.parse(out.trim().split('\n').pop()!) as {
    drained: number;
    seconds: number;
    cpuSeconds: number;
  };
  return { rate: drained / seconds, cpuSeconds };
}

/** How many loops each thread of the bare pipeline runs (measured here: 8 a thread was fastest of 4, 8 and 16). */
const barePollers = () => Number(process.env.BENCH_BARE_POLLERS ?? 8);
/** Its threads: one per core unless BENCH_BARE_THREADS says otherwise (for tuning). */
const bareThreads = () => Number(process.env.BENCH_BARE_THREADS ?? os.availableParallelism());

/** The bare pipeline's rate, and the CPU seconds of its process; `onPid` gets its process ID (to meter the servers beside it). */
export async function bareDrain(
  endpoint: string,
  queueUrl: string,
  databaseUrl: string,
  keyFile: string,
  onPid: (pid: number) => void = () => {},
): Promise<{ rate: number; cpuSeconds: number; drained: number; inserted: number; invalid: number }> {
  const args = [path.join(__dirname, 'bare-pipeline.ts'), endpoint, queueUrl, databaseUrl, keyFile];
  const out = await runNode([...args, String(bareThreads()), String(barePollers())], process.env, onPid);
  const r = JSON.parse(out.trim().split('\n').pop()!) as {
    drained: number;
    inserted: number;
    invalid: number;
    seconds: number;
    cpuSeconds: number;
  };
  return { ...r, rate: r.drained / r.seconds };
}

/** The keys of `keyring` as the bare pipeline reads them (a file in `dir`: keys stay out of command lines). */
export function writeBareKeys(dir: string, keyring: Keyring): string {
  const file = path.join(dir, 'bare-keys.json');
  const b64 = (b: Buffer) => b.toString('base64');
  const keys = Object.fromEntries([...keyring.keys].map(([id, k]) => [id, b64(k)]));
  fs.writeFileSync(
    file,
    JSON.stringify({ activeKeyId: keyring.activeKeyId, keys, fingerprintKey: b64(keyring.fingerprintKey) }),
    {
      mode: 0o600,
    },
  );
  return file;
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
      c((x) => x.messageId),
      c((x) => x.userId),
      c((x) => x.deviceType),
      c((x) => x.maskedIp),
      c((x) => x.maskedDeviceId),
      c((x) => Buffer.from(x.ipCiphertext, 'base64')),
      c((x) => Buffer.from(x.deviceIdCiphertext, 'base64')),
      c((x) => x.piiKeyId),
      c((x) => x.locale),
      c((x) => x.appVersion),
      c((x) => x.appVersionMajor),
      c((x) => x.appVersionMinor),
      c((x) => x.appVersionPatch),
      c((x) => x.loginFingerprint),
      c((x) => x.createDate),
    ],
  );
}

/** Rows a second, `lanes` connections each inserting its share of the chunks one after another. */
async function insertRate(
  chunks: TransformedBatch[],
  lanes: number,
  insert: (lane: number, chunk: TransformedBatch) => Promise<void>,
): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      while (next < chunks.length) await insert(lane, chunks[next++]);
    }),
  );
  return chunks.reduce((n, c) => n + c.rows.length + c.quarantine.length, 0) / ((performance.now() - started) / 1000);
}

/**
 * The persist step alone: the pipeline's own statement (ledger and rows, lib/ingest/persist.ts)
 * through Prisma's driver adapter as the drain threads write it, and through the Prisma client
 * (`$queryRaw`) as the main thread does, against plain SQL (rows only) on the same data and
 * concurrency; each also in client CPU seconds per 10,000 rows (this process, so the client's
 * share of the work).
 */
export async function persistVsRaw(
  services: { ownerDatabaseUrl?: string; databaseUrl: string },
  tag: string,
  keyring: Keyring,
  bodies: string[],
  chunkSize: number,
  lanes: number,
) {
  const messages = bodies.map((Body, i) =>
    toReceived({ MessageId: `${tag}-${i}`, ReceiptHandle: 'x', Body, Attributes: { SentTimestamp: String(Date.now()) } }),
  );
  const chunks: TransformedBatch[] = [];
  for (let i = 0; i < messages.length; i += chunkSize) chunks.push(transformBatch(keyring, messages.slice(i, i + chunkSize)));
  const rowsOnly = chunks.map((c) => ({ rows: c.rows, quarantine: [] }));
  const measured = async (run: () => Promise<number>) => {
    const cpu = process.cpuUsage();
    const rate = await run();
    const { user, system } = process.cpuUsage(cpu);
    return { rate, cpuPer10k: ((user + system) / 1e6 / messages.length) * 10_000 };
  };

  const rawUrl = (await freshDatabase(services, `${tag}_raw`)).app;
  const pgs = await Promise.all(
    Array.from({ length: lanes }, async () => {
      const pg = new PgClient({ connectionString: rawUrl });
      await pg.connect();
      return pg;
    }),
  );
  const raw = await measured(() => insertRate(rowsOnly, lanes, (lane, chunk) => rawInsert(pgs[lane], chunk)));
  await Promise.all(pgs.map((pg) => pg.end()));

  const adapter = await connectRawSql((await freshDatabase(services, `${tag}_adapter`)).app, { maxConnections: lanes });
  const viaAdapter = await measured(() =>
    insertRate(rowsOnly, lanes, async (_, chunk) => void (await insertChunk(adapter, chunk))),
  );
  await adapter.close();

  const db = createDb((await freshDatabase(services, `${tag}_client`)).app, { maxConnections: lanes });
  const client = viaClient(db);
  const viaPrismaClient = await measured(() =>
    insertRate(rowsOnly, lanes, async (_, chunk) => void (await insertChunk(client, chunk))),
  );
  await db.$disconnect();
  return { raw, viaAdapter, viaPrismaClient };
}
