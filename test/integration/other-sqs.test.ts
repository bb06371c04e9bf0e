// The same pipeline against a second SQS implementation (moto), configured the way users
// point it at LocalStack or ElasticMQ: AWS_ENDPOINT_URL_SQS and the queue URL the service
// returned. Kept small: moto answers in tens of milliseconds a call.
import { ChangeMessageVisibilityCommand } from '@aws-sdk/client-sqs';
import { Client as PgClient } from 'pg';
import { optionsFromConfig, runIngest } from '../../cli/ingest-run';
import { sampleBodies } from '../../lib/ingest/load';
import { insertChunk } from '../../lib/ingest/persist';
import { viaClient } from '../../lib/platform/db';
import { getApproximateCounts, receiveMessages, sendMessages } from '../../lib/ingest/sqs';
import { transformBatch } from '../../lib/pipeline/transform';
import { dumpTables, findPlaintext, SAMPLE_PII, startPipeline, type Pipeline } from './helpers';
import { startMoto } from './moto';

let moto: Awaited<ReturnType<typeof startMoto>>;
// One receive at a time (one drain, on the worker's main thread: this file also covers
// WORKER_DRAIN_THREADS=0): with concurrent ReceiveMessage calls moto once handed a message to
// two receivers (handled: counted as already seen) and then reported 20 messages in flight
// after a complete drain, which fauxqs and SQS do not; that bookkeeping is moto's, not ours.
const ingestOptions = () => ({ ...optionsFromConfig(p.config.ingest), concurrency: 1, receiveConcurrency: 1 });
let p: Pipeline;
let pg: PgClient;

beforeAll(async () => {
  moto = await startMoto();
  p = await startPipeline('moto', { AWS_ENDPOINT_URL_SQS: moto.endpoint, WORKER_DRAIN_THREADS: '0' });
  expect(p.config.sqs.queueUrl.startsWith(moto.endpoint)).toBe(true);
  pg = new PgClient({ connectionString: p.config.databaseUrl });
  await pg.connect();
}, 180_000);

afterAll(async () => {
  await pg?.end();
  await p?.close();
  await moto?.stop();
});

test('the sample through moto: 99 rows, 1 quarantined, every message ID once, no plaintext, queue empty', async () => {
  const ids = await sendMessages(p.sqs, p.config.sqs.queueUrl, sampleBodies());
  const run = await runIngest(p.client, p.config, ingestOptions());
  // Standard queues deliver at least once (moto, like SQS, can hand one message to two
  // concurrent receives): every extra delivery must be recognised, none stored twice.
  expect(run.summary).toMatchObject({ persisted: 99, quarantined: 1, stopReason: 'queue_empty' });
  expect(run.summary.received - run.summary.alreadySeen).toBe(100);
  const stored = (await pg.query('SELECT message_id FROM user_logins UNION ALL SELECT message_id FROM quarantine')).rows.map(
    (r) => r.message_id,
  );
  expect(stored.sort()).toEqual([...ids].sort());
  // moto's SentTimestamp reaches create_date (the sample carries none of its own).
  const dates = await pg.query(`SELECT count(*)::int AS n FROM user_logins WHERE create_date > now() - interval '10 minutes'`);
  expect(dates.rows[0].n).toBe(99);
  expect(findPlaintext(await dumpTables(p.config.databaseUrl), SAMPLE_PII)).toEqual([]);
  expect(await getApproximateCounts(p.sqs, p.config.sqs.queueUrl)).toEqual({ visible: 0, inFlight: 0 });
});

test('redelivered by moto after a lost delete: deduplicated', async () => {
  await sendMessages(
    p.sqs,
    p.config.sqs.queueUrl,
    sampleBodies()
      .slice(20, 23)
      .map((b) => b.replace('"user_id":"', '"user_id":"moto-')),
  );
  const received = await receiveMessages(p.sqs, p.config.sqs.queueUrl, {
    maxMessages: 10,
    waitTimeSeconds: 1,
    visibilityTimeoutSeconds: 30,
    concurrency: 1,
  });
  expect(received).toHaveLength(3);
  expect(received.every((m) => m.receiveCount === 1 && m.sentTimestamp !== null)).toBe(true);
  await insertChunk(viaClient(p.db), transformBatch(p.keyring, received));
  for (const m of received) {
    await p.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: p.config.sqs.queueUrl,
        ReceiptHandle: m.receiptHandle,
        VisibilityTimeout: 0,
      }),
    );
  }
  const run = await runIngest(p.client, p.config, ingestOptions());
  expect(run.summary).toMatchObject({ received: 3, persisted: 0, alreadySeen: 3 });
  expect(await getApproximateCounts(p.sqs, p.config.sqs.queueUrl)).toEqual({ visible: 0, inFlight: 0 });
});
