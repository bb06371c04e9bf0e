// The ingest workflow end to end on real services: the sample through SQS, Temporal and
// PostgreSQL, with the checks the foundation promises.
import { ChangeMessageVisibilityCommand } from '@aws-sdk/client-sqs';
import { Client as PgClient } from 'pg';
import { EncryptionCodec } from '../../lib/codec';
import { optionsFromConfig, runIngest, type IngestRun } from '../../lib/ingest-run';
import { generateBodies, sampleBodies } from '../../lib/load';
import { persistBatch, persistBatchIsolating } from '../../lib/persist';
import { open } from '../../lib/crypto';
import { queueDepth, receiveMessages, sendMessages } from '../../lib/sqs';
import { transformBatch } from '../../lib/transform';
import { dumpTables, findPlaintext, SAMPLE, SAMPLE_PII, startPipeline, type Pipeline } from './helpers';

let p: Pipeline;
let pg: PgClient;
let firstRun: IngestRun;
let sampleIds: string[];

const count = async (sql: string) => Number((await pg.query(sql)).rows[0].n);
const ingest = () => runIngest(p.client, p.config, { ...optionsFromConfig(p.config.ingest), batchSize: 40 });

beforeAll(async () => {
  p = await startPipeline('ingest');
  pg = new PgClient({ connectionString: p.config.databaseUrl });
  await pg.connect();
  sampleIds = await sendMessages(p.sqs, p.config.sqs.queueUrl, sampleBodies());
  firstRun = await ingest();
});

afterAll(async () => {
  await pg?.end();
  await p?.close();
});

test('the sample becomes exactly 99 rows and 1 quarantined message', async () => {
  expect(firstRun.summary).toMatchObject({
    received: 100,
    persisted: 99,
    quarantined: 1,
    quarantinedByReason: { unknown_shape: 1 },
    alreadySeen: 0,
    stopReason: 'queue_empty',
  });
  expect(await count('SELECT count(*) AS n FROM user_logins')).toBe(99);
  expect(await count('SELECT count(*) AS n FROM quarantine')).toBe(1);
  // Every message ID sent is accounted for exactly once, as a row or a quarantine entry.
  const stored = (
    await pg.query(`SELECT message_id FROM user_logins UNION ALL SELECT message_id FROM quarantine`)
  ).rows.map((r) => r.message_id);
  expect(stored.sort()).toEqual([...sampleIds].sort());
  expect(await queueDepth(p.sqs, p.config.sqs.queueUrl)).toEqual({ visible: 0, inFlight: 0 });
});

test('rows keep the fields as sent, with a comparable app version and a create date', async () => {
  const first = SAMPLE[0] as Record<string, string>;
  const { rows } = await pg.query(
    `SELECT user_id, device_type, locale, app_version, app_version_major, app_version_minor, app_version_patch, create_date
     FROM user_logins WHERE user_id = $1`,
    [first.user_id],
  );
  expect(rows).toHaveLength(1);
  const [major, minor, patch] = first.app_version.split('.').map(Number);
  expect(rows[0]).toMatchObject({
    device_type: first.device_type,
    locale: first.locale,
    app_version: first.app_version,
    app_version_major: major,
    app_version_minor: minor ?? 0,
    app_version_patch: patch ?? 0,
  });
  // The sample has no create_date: it falls back to SentTimestamp, within this test's lifetime.
  expect(Math.abs(Date.now() - rows[0].create_date.getTime())).toBeLessThan(10 * 60_000);
  expect(await count(`SELECT count(*) AS n FROM user_logins WHERE locale IS NULL`)).toBe(SAMPLE.filter((e) => e.locale === null).length);
});

test('no IP or device ID of the sample appears in plain text in any table', async () => {
  const items = await dumpTables(p.config.databaseUrl);
  expect(items.length).toBeGreaterThanOrEqual(200); // user_logins, quarantine, ingested_messages, schema_migrations
  expect(findPlaintext(items, SAMPLE_PII)).toEqual([]);
});

test('the plaintext search finds values hidden in bytea (it decodes what it searches)', async () => {
  await pg.query('CREATE TEMP TABLE control (note text, blob bytea)');
  await pg.query('INSERT INTO control VALUES ($1, $2)', ['nothing here', Buffer.from(`{"ip":"${SAMPLE_PII[0]}"}`)]);
  const rows = (await pg.query('SELECT * FROM control')).rows;
  // As psql or pg_dump would print it, the bytea is hex: a plain text search misses it ...
  const hex = (await pg.query(`SELECT blob::text AS t FROM control`)).rows[0].t as string;
  expect(hex.startsWith('\\x')).toBe(true);
  expect(hex.includes(SAMPLE_PII[0])).toBe(false);
  // ... while the decoded bytes are found.
  expect(findPlaintext([{ where: 'control', value: rows[0] }], SAMPLE_PII)).toEqual([{ where: 'control.blob', needle: SAMPLE_PII[0] }]);
});

test('equal values give equal fingerprints, different values different ones', async () => {
  const { rows } = await pg.query(
    `SELECT count(DISTINCT masked_ip)::int AS ips, count(DISTINCT masked_device_id)::int AS devices FROM user_logins`,
  );
  const valid = SAMPLE.filter((e) => typeof e.ip === 'string');
  expect(rows[0].ips).toBe(new Set(valid.map((e) => e.ip)).size);
  expect(rows[0].devices).toBe(new Set(valid.map((e) => e.device_id)).size);

  // The same login sent again under a new message ID: same fingerprints, counted as a duplicate login.
  await sendMessages(p.sqs, p.config.sqs.queueUrl, [JSON.stringify(SAMPLE[0])]);
  const run = await ingest();
  expect(run.summary).toMatchObject({ received: 1, persisted: 1, duplicateLogins: 1 });
  const same = await pg.query(
    `SELECT count(DISTINCT masked_ip)::int AS ips, count(DISTINCT masked_device_id)::int AS devices,
            count(DISTINCT login_fingerprint)::int AS logins, count(*)::int AS n
     FROM user_logins WHERE user_id = $1`,
    [SAMPLE[0].user_id],
  );
  expect(same.rows[0]).toEqual({ ips: 1, devices: 1, logins: 1, n: 2 });
});

test('redelivered messages (stored before, never deleted) add nothing', async () => {
  const extra = [JSON.stringify({ ...SAMPLE[1], user_id: 'redelivery-user-1' }), JSON.stringify({ ...SAMPLE[2], user_id: 'redelivery-user-2' })];
  const ids = await sendMessages(p.sqs, p.config.sqs.queueUrl, extra);
  // A worker that committed and then died before deleting: stored, still in the queue.
  const received = await receiveMessages(p.sqs, p.config.sqs.queueUrl, {
    maxMessages: 10, waitTimeSeconds: 1, visibilityTimeoutSeconds: 30, concurrency: 1, maxBatchChars: 1e6,
  });
  expect(received.map((m) => m.messageId).sort()).toEqual([...ids].sort());
  await persistBatch(p.db, transformBatch(p.keyring, received));
  for (const m of received) {
    await p.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: p.config.sqs.queueUrl, ReceiptHandle: m.receiptHandle, VisibilityTimeout: 0 }));
  }
  const before = await count('SELECT count(*) AS n FROM user_logins');

  const run = await ingest();
  expect(run.summary).toMatchObject({ received: 2, persisted: 0, quarantined: 0, alreadySeen: 2 });
  expect(await count('SELECT count(*) AS n FROM user_logins')).toBe(before);
  expect(await queueDepth(p.sqs, p.config.sqs.queueUrl)).toEqual({ visible: 0, inFlight: 0 });
});

test("the run's history, fetched from the server, holds no plaintext IP or device ID", async () => {
  const history = await p.client.workflow.getHandle(firstRun.workflowId, firstRun.runId).fetchHistory();
  const events = history.events ?? [];
  expect(events.length).toBeGreaterThan(20);
  expect(findPlaintext([{ where: 'history', value: events }], SAMPLE_PII)).toEqual([]);

  // Control: decoding the same payloads with the codec reveals the values, so they did
  // pass through the history (encrypted), and the search would have found them.
  const codec = new EncryptionCodec(p.keyring);
  const decoded: unknown[] = [];
  for (const e of events) {
    const payloads = [
      ...(e.activityTaskScheduledEventAttributes?.input?.payloads ?? []),
      ...(e.activityTaskCompletedEventAttributes?.result?.payloads ?? []),
    ];
    decoded.push(await codec.decode(payloads));
  }
  const found = new Set(findPlaintext([{ where: 'decoded', value: decoded }], SAMPLE_PII).map((h) => h.needle));
  expect(found.size).toBe(SAMPLE_PII.length);
});

test('a long drain continues as new with its totals carried over, and stops at maxMessages', async () => {
  const ids = await sendMessages(p.sqs, p.config.sqs.queueUrl, generateBodies(300, { seed: 3, malformedShare: 0.1 }));
  const capped = await runIngest(p.client, p.config, { ...optionsFromConfig(p.config.ingest), batchSize: 40, maxMessages: 100 });
  expect(capped.summary).toMatchObject({ received: 100, stopReason: 'max_messages' });
  expect(await queueDepth(p.sqs, p.config.sqs.queueUrl)).toEqual({ visible: 200, inFlight: 0 });

  const rest = await runIngest(p.client, p.config, { ...optionsFromConfig(p.config.ingest), batchSize: 25, concurrency: 2, batchesPerRun: 2 });
  expect(rest.summary.runs).toBeGreaterThanOrEqual(4);
  expect(rest.summary).toMatchObject({ received: 200, stopReason: 'queue_empty' });
  expect(rest.summary.persisted + rest.summary.quarantined).toBe(200);
  const stored = await pg.query('SELECT count(*)::int AS n FROM ingested_messages WHERE message_id = ANY($1)', [ids]);
  expect(stored.rows[0].n).toBe(300);
  // Each run's history stays small: no run holds more than batchesPerRun batches (plus the in-flight ones).
  const runs = [];
  for await (const wf of p.client.workflow.list({ query: `WorkflowId = '${rest.workflowId}'` })) runs.push(wf);
  expect(runs.length).toBeGreaterThanOrEqual(rest.summary.runs);
});

test('failure messages are encrypted in the history too, and readable through the codec', async () => {
  const workflowId = `${p.config.ingest.workflowId}-bad-options`;
  const handle = await p.client.workflow.start('ingestWorkflow', { workflowId, taskQueue: p.config.temporal.taskQueue, args: [{ batchSize: 5000 }] });
  await expect(handle.result()).rejects.toMatchObject({ cause: { message: expect.stringContaining('batchSize=5000 must be a whole number from 1 to 1000') } });
  const events = (await handle.fetchHistory()).events ?? [];
  const failed = events.find((e) => e.workflowExecutionFailedEventAttributes)?.workflowExecutionFailedEventAttributes?.failure;
  expect(failed?.encodedAttributes?.metadata?.encoding && Buffer.from(failed.encodedAttributes.metadata.encoding).toString()).toBe('binary/encrypted');
  expect(JSON.stringify(failed)).not.toContain('batchSize=5000');
});

test('a row the database refuses despite validation is quarantined alone; the rest of its batch is stored', async () => {
  const messages = SAMPLE.slice(30, 34).map((e, i) => ({
    messageId: `isolate-${i}-${Date.now()}`,
    receiptHandle: 'unused',
    body: JSON.stringify(e),
    bodyBytes: JSON.stringify(e).length,
    bodyTruncated: false,
    sentTimestamp: Date.now(),
    receiveCount: 1,
  }));
  const batch = transformBatch(p.keyring, messages);
  expect(batch.rows).toHaveLength(4);
  batch.rows[2].appVersionMajor = 3_000_000_000; // beyond PostgreSQL's integer: SQLSTATE 22003
  await expect(persistBatch(p.db, batch)).rejects.toThrow(); // the plain statement fails as a whole

  const result = await persistBatchIsolating(p.db, p.keyring, batch);
  expect(result).toMatchObject({ persisted: 3, quarantined: 1, quarantinedByReason: { 'db_rejected:22003': 1 }, alreadySeen: 0 });
  const ids = messages.map((m) => m.messageId);
  expect((await pg.query('SELECT count(*)::int AS n FROM ingested_messages WHERE message_id = ANY($1)', [ids])).rows[0].n).toBe(4);
  const q = await pg.query('SELECT message_id, reasons, body_ciphertext, pii_key_id FROM quarantine WHERE message_id = $1', [ids[2]]);
  expect(q.rows[0].reasons).toEqual(['db_rejected:22003']);
  const body = open(p.keyring, { keyId: q.rows[0].pii_key_id, blob: q.rows[0].body_ciphertext }, `${ids[2]}:body`).toString();
  expect(JSON.parse(body)).toMatchObject({ messageId: ids[2], userId: SAMPLE[32].user_id, appVersionMajor: 3_000_000_000 });
  expect(findPlaintext([{ where: 'rejected body', value: body }], SAMPLE_PII)).toEqual([]);
});

test('messages held by a receiver that died are waited for, not left behind', async () => {
  const bodies = generateBodies(15, { seed: 11 });
  await sendMessages(p.sqs, p.config.sqs.queueUrl, bodies.slice(0, 5));
  // A worker that received these and died: invisible for 4 s, never deleted.
  const held = await receiveMessages(p.sqs, p.config.sqs.queueUrl, { maxMessages: 10, waitTimeSeconds: 1, visibilityTimeoutSeconds: 4, concurrency: 1, maxBatchChars: 1e6 });
  expect(held).toHaveLength(5);
  await sendMessages(p.sqs, p.config.sqs.queueUrl, bodies.slice(5));
  const run = await runIngest(p.client, p.config, optionsFromConfig(p.config.ingest));
  expect(run.summary).toMatchObject({ received: 15, alreadySeen: 0, stopReason: 'queue_empty', leftInQueue: null });
  expect(await queueDepth(p.sqs, p.config.sqs.queueUrl)).toEqual({ visible: 0, inFlight: 0 });
});
