// The second yardstick: the pipeline's necessary work with no durability, the plain script a
// user would weigh the ingest against (issue 19). Runs as its own process
// (`ts-node scripts/bench/bare-pipeline.ts ENDPOINT QUEUE_URL DATABASE_URL KEYS THREADS POLLERS`,
// KEYS a JSON file {activeKeyId, keys: {id: base64}, fingerprintKey: base64}): THREADS worker
// threads, each with its own SQS client and PostgreSQL pool, and POLLERS loops in each that
//   1. receive 10 at a time until about 100 messages are gathered (or a receive comes back empty),
//   2. parse and check each body and mask it exactly as the ingest does (lib/pipeline/transform:
//      3 HMAC-SHA256 fingerprints, 2 AES-256-GCM seals with the message ID in the associated data,
//      keys imported once),
//   3. insert the rows in one `INSERT … SELECT FROM unnest(…) ON CONFLICT (message_id) DO NOTHING`
//      into `user_logins` (the same columns and indexes: the migrated table itself),
//   4. delete the chunk with DeleteMessageBatch.
// No retries, no ledger, no quarantine table (an invalid message is counted and deleted), no
// orchestration. A loop ends after two empty receives in a row, as the raw drain's do. Prints
// one JSON line: drained, inserted, invalid, seconds, cpuSeconds.
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

// The threads compile the project's own pure code (lib/pipeline) while they start, before the
// clock runs; the hot path is then plain JavaScript.
const THREAD = `
require('ts-node').register({ transpileOnly: true });
const { parentPort, workerData } = require('node:worker_threads');
const { SQSClient, ReceiveMessageCommand, DeleteMessageBatchCommand } = require('@aws-sdk/client-sqs');
const { Pool } = require('pg');
const { transformMessage } = require(workerData.root + '/lib/pipeline/transform');
const { toReceived } = require(workerData.root + '/lib/ingest/sqs');
const { endpoint, queueUrl, databaseUrl, pollers, keys } = workerData;
const keyring = {
  activeKeyId: keys.activeKeyId,
  keys: new Map(Object.entries(keys.keys).map(([id, k]) => [id, Buffer.from(k, 'base64')])),
  fingerprintKey: Buffer.from(keys.fingerprintKey, 'base64'),
};
const sqs = new SQSClient({ region: 'us-east-1', endpoint, useQueueUrlAsEndpoint: false, cacheMiddleware: true, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
const pool = new Pool({ connectionString: databaseUrl, max: pollers });
const INSERT = \`INSERT INTO user_logins (message_id, user_id, device_type, masked_ip, masked_device_id, ip_ciphertext,
    device_id_ciphertext, pii_key_id, locale, app_version, app_version_major, app_version_minor, app_version_patch,
    login_fingerprint, create_date)
  SELECT m, u, d, mi, md, decode(ic, 'base64'), decode(dc, 'base64'), k, l, v, a, b, c, f, t::timestamptz
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
    $10::text[], $11::int[], $12::int[], $13::int[], $14::text[], $15::text[]) AS x(m, u, d, mi, md, ic, dc, k, l, v, a, b, c, f, t)
  ON CONFLICT (message_id) DO NOTHING\`;
let drained = 0, inserted = 0, invalid = 0;
const CHUNK = 100;
const OVERLAP = workerData.overlap;

// Up to a chunk of messages, and whether the last receive came back empty.
async function gather() {
  const got = [];
  while (got.length < CHUNK) {
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10,
      WaitTimeSeconds: 1, VisibilityTimeout: 60, MessageSystemAttributeNames: ['SentTimestamp'] }));
    if (!Messages.length) return { got, endedEmpty: true };
    for (const m of Messages) got.push(m);
  }
  return { got, endedEmpty: false };
}

async function store(rows) {
  if (!rows.length) return;
  const cols = Array.from({ length: 15 }, () => new Array(rows.length));
  rows.forEach((r, i) => {
    cols[0][i] = r.messageId; cols[1][i] = r.userId; cols[2][i] = r.deviceType; cols[3][i] = r.maskedIp;
    cols[4][i] = r.maskedDeviceId; cols[5][i] = r.ipCiphertext; cols[6][i] = r.deviceIdCiphertext; cols[7][i] = r.piiKeyId;
    cols[8][i] = r.locale; cols[9][i] = r.appVersion; cols[10][i] = r.appVersionMajor; cols[11][i] = r.appVersionMinor;
    cols[12][i] = r.appVersionPatch; cols[13][i] = r.loginFingerprint; cols[14][i] = r.createDate;
  });
  const { rowCount } = await pool.query(INSERT, cols);
  inserted += rowCount;
}

async function remove(messages) {
  const calls = [];
  for (let i = 0; i < messages.length; i += 10)
    calls.push(sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl,
      Entries: messages.slice(i, i + 10).map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle })) })));
  await Promise.all(calls);
}

async function storeThenRemove(rows, messages) {
  await store(rows);
  await remove(messages);
  drained += messages.length;
}

// With OVERLAP, a loop gathers and masks its next chunk while its last one is stored and
// deleted (at most one chunk of a loop in the database at a time); without, one after the other.
async function loop() {
  let last = Promise.resolve();
  // Empty receives in a row, counted across gathers: a gather that ended on an empty receive
  // counts one, so a loop stops two long polls after the queue ran dry (as a drain's pollers do), not three.
  for (let empty = 0; empty < 2; ) {
    const { got: messages, endedEmpty } = await gather();
    if (!messages.length) { empty++; continue; }
    empty = endedEmpty ? 1 : 0;
    const rows = [];
    for (const m of messages) {
      const outcome = transformMessage(keyring, toReceived(m));
      if (outcome.kind === 'row') rows.push(outcome.row);
      else invalid++;
    }
    await last;
    last = storeThenRemove(rows, messages);
    if (!OVERLAP) await last;
  }
  await last;
}
parentPort.once('message', async () => {
  await Promise.all(Array.from({ length: pollers }, loop));
  await pool.end();
  parentPort.postMessage({ drained, inserted, invalid });
});
pool.connect().then((c) => (c.release(), parentPort.postMessage('ready')));
`;

async function main(): Promise<void> {
  const [endpoint, queueUrl, databaseUrl, keyFile, threads, pollers] = process.argv.slice(2);
  const keys = JSON.parse(fs.readFileSync(keyFile, 'utf8')) as unknown;
  const root = path.resolve(__dirname, '..', '..');
  const workers = Array.from(
    { length: Number(threads) },
    () =>
      new Worker(THREAD, {
        eval: true,
        workerData: {
          endpoint,
          queueUrl,
          databaseUrl,
          keys,
          root,
          pollers: Number(pollers),
          overlap: process.env.BENCH_BARE_OVERLAP === '1',
        },
      }),
  );
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const counts = await Promise.all(
    workers.map((w) => {
      const done = new Promise<{ drained: number; inserted: number; invalid: number }>((resolve) => w.once('message', resolve));
      w.postMessage('go');
      return done;
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const sum = (k: 'drained' | 'inserted' | 'invalid') => counts.reduce((a, c) => a + c[k], 0);
  console.log(
    JSON.stringify({
      drained: sum('drained'),
      inserted: sum('inserted'),
      invalid: sum('invalid'),
      seconds,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
    }),
  );
  await Promise.all(workers.map((w) => w.terminate()));
}

void main();
