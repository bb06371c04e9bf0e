// The ingest workflow end to end on real services: the sample through SQS, Temporal and
// PostgreSQL, with the checks the foundation promises.
import { ChangeMessageVisibilityCommand } from '@aws-sdk/client-sqs';
import { Client as PgClient } from 'pg';
import { EncryptionCodec } from '../../lib/pii/codec';
import { optionsFromConfig, runIngest, type IngestRun } from '../../cli/ingest-run';
import { generateBodies, sampleBodies } from '../../lib/ingest/load';
import { insertChunk, insertChunkIsolatingRejects } from '../../lib/ingest/persist';
import { open } from '../../lib/pii/crypto';
import { connectRawSql, viaClient } from '../../lib/platform/db';
import { INGEST_LIMITS, drainInput, withDefaults } from '../../lib/contract/ingest-options';
import { drain } from '../../lib/ingest/drain';
import { MAX_BODY_BYTES, createSqsClient, getApproximateCounts, receiveMessages, sendMessages } from '../../lib/ingest/sqs';
import { transformBatch } from '../../lib/pipeline/transform';
import type { Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import {
  createQueue,
  dumpTables,
  findPlaintext,
  SAMPLE,
  SAMPLE_PII,
  startPipeline,
  startWorkerProcess,
  VALID_SAMPLE,
  type Pipeline,
} from './helpers';

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
  const stored = (await pg.query(`SELECT message_id FROM user_logins UNION ALL SELECT message_id FROM quarantine`)).rows.map(
    (r) => r.message_id,
  );
  expect(stored.sort()).toEqual([...sampleIds].sort());
  expect(await getApproximateCounts(p.sqs, p.config.sqs.queueUrl)).toEqual({ visible: 0, inFlight: 0 });
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
  expect(await count(`SELECT count(*) AS n FROM user_logins WHERE locale IS NULL`)).toBe(
    SAMPLE.filter((e) => e.locale === null).length,
  );
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
  expect(findPlaintext([{ where: 'control', value: rows[0] }], SAMPLE_PII)).toEqual([
    { where: 'control.blob', needle: SAMPLE_PII[0] },
  ]);
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
  const extra = [
    JSON.stringify({ ...SAMPLE[1], user_id: 'redelivery-user-1' }),
    JSON.stringify({ ...SAMPLE[2], user_id: 'redelivery-user-2' }),
  ];
  const ids = await sendMessages(p.sqs, p.config.sqs.queueUrl, extra);
  // A worker that committed and then died before deleting: stored, still in the queue.
  const received = await receiveMessages(p.sqs, p.config.sqs.queueUrl, {
    maxMessages: 10,
    waitTimeSeconds: 1,
    visibilityTimeoutSeconds: 30,
    concurrency: 1,
  });
  expect(received.map((m) => m.messageId).sort()).toEqual([...ids].sort());
  // The two attributes a receive asks for (and only needs) come back with each message.
  for (const m of received) {
    expect(m.receiveCount).toBe(1);
    expect(Math.abs(Date.now() - m.sentTimestamp!)).toBeLessThan(60_000);
  }
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
  const before = await count('SELECT count(*) AS n FROM user_logins');

  const run = await ingest();
  expect(run.summary).toMatchObject({ received: 2, persisted: 0, quarantined: 0, alreadySeen: 2 });
  expect(await count('SELECT count(*) AS n FROM user_logins')).toBe(before);
  expect(await getApproximateCounts(p.sqs, p.config.sqs.queueUrl)).toEqual({ visible: 0, inFlight: 0 });
});

/** Every payload anywhere in a history (inputs, results, heartbeats, failures, memos), decoded with the codec. */
async function decodedPayloads(events: unknown[]): Promise<unknown[]> {
  const codec = new EncryptionCodec(p.keyring);
  const payloads: Payload[] = [];
  const visit = (v: unknown) => {
    if (!v || typeof v !== 'object') return;
    if (Array.isArray(v)) return v.forEach(visit);
    const o = v as Record<string, unknown>;
    if (o.metadata && typeof o.metadata === 'object' && 'data' in o) payloads.push(o);
    Object.values(o).forEach(visit);
  };
  visit(events);
  return (await codec.decode(payloads)).map((d) => {
    const text = Buffer.from(d.data ?? []).toString('utf8');
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  });
}

/** The sample's field values found in decoded payloads, as a JSON string or inside one (a body). */
const SAMPLE_VALUES = [...new Set(VALID_SAMPLE.flatMap((e) => [e.user_id, e.ip, e.device_id, e.app_version] as string[]))];
function sampleValuesIn(decoded: unknown[]): string[] {
  const texts = decoded.map((d) => JSON.stringify(d));
  return SAMPLE_VALUES.filter((v) => texts.some((t) => t.includes(`"${v}"`) || t.includes(`\\"${v}\\"`)));
}

test("the run's history holds no message data at all, not even encrypted: decoded, it has none of the sample's values", async () => {
  const history = await p.client.workflow.getHandle(firstRun.workflowId, firstRun.runId).fetchHistory();
  const events = history.events ?? [];
  const decoded = await decodedPayloads(events);
  // The decoding works: the run's own result, its counts, is among what it decoded.
  expect(decoded).toContainEqual(expect.objectContaining({ received: 100, persisted: 99 }));
  expect(sampleValuesIn(decoded)).toEqual([]);
  expect(findPlaintext([{ where: 'history', value: events }], SAMPLE_PII)).toEqual([]);

  // Control: the same search over the same history plus one activity input that carries the
  // sample's bodies (as the old design sent them), encoded by the codec, finds every value.
  const codec = new EncryptionCodec(p.keyring);
  const [carrier] = await codec.encode([
    {
      metadata: { encoding: Buffer.from('json/plain') },
      data: Buffer.from(JSON.stringify(SAMPLE.map((e) => JSON.stringify(e)))),
    },
  ]);
  const withBodies = [...events, { activityTaskScheduledEventAttributes: { input: { payloads: [carrier] } } }];
  expect(sampleValuesIn(await decodedPayloads(withBodies))).toEqual(SAMPLE_VALUES);
});

test('a long drain continues as new with its totals carried over, and stops at maxMessages', async () => {
  const ids = await sendMessages(p.sqs, p.config.sqs.queueUrl, generateBodies(300, { seed: 3, malformedShare: 0.1 }));
  const capped = await runIngest(p.client, p.config, { ...optionsFromConfig(p.config.ingest), batchSize: 40, maxMessages: 100 });
  expect(capped.summary).toMatchObject({ received: 100, stopReason: 'max_messages' });
  expect(await getApproximateCounts(p.sqs, p.config.sqs.queueUrl)).toEqual({ visible: 200, inFlight: 0 });

  // Ten of the rest held for 4 s by a receiver that died: the first run drains the others,
  // waits for those ten and hands over (one drain round a run), the next one gets them.
  const held = await receiveMessages(p.sqs, p.config.sqs.queueUrl, {
    maxMessages: 10,
    waitTimeSeconds: 1,
    visibilityTimeoutSeconds: 4,
    concurrency: 1,
  });
  expect(held).toHaveLength(10);
  const restOptions = { ...optionsFromConfig(p.config.ingest), batchSize: 25, slicesPerRun: 1 };
  const rest = await runIngest(p.client, p.config, restOptions);
  expect(rest.summary).toMatchObject({ received: 200, alreadySeen: 0, stopReason: 'queue_empty' });
  expect(rest.summary.persisted + rest.summary.quarantined).toBe(200);
  const stored = await pg.query('SELECT count(*)::int AS n FROM ingested_messages WHERE message_id = ANY($1)', [ids]);
  expect(stored.rows[0].n).toBe(300);

  // The chain of runs, walked back from the last one through each run's predecessor (no
  // visibility query, which may lag). The ten held messages cannot come back for 4 s, so the
  // drain takes more than one round, and with slicesPerRun 1 every run does exactly one round
  // of `concurrency` drains and then continues as new: the history each run leaves is that
  // round, a depth check, perhaps a 2 s wait, and the hand-over, whatever the queue holds.
  // (Bodies through the history, as before this design, took ~2,200 bytes a message.)
  const { concurrency } = withDefaults(restOptions);
  const chain: { drains: number; events: number; bytes: number; ended: string }[] = [];
  for (let runId: string | null | undefined = rest.runId; runId;) {
    const history: temporal.api.history.v1.IHistory = await p.client.workflow.getHandle(rest.workflowId, runId).fetchHistory();
    const events: temporal.api.history.v1.IHistoryEvent[] = history.events ?? [];
    const last = events[events.length - 1];
    chain.unshift({
      drains: events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'drainQueue').length,
      events: events.length,
      bytes: temporal.api.history.v1.History.encode(history).finish().length,
      ended: last.workflowExecutionContinuedAsNewEventAttributes
        ? 'continued_as_new'
        : last.workflowExecutionCompletedEventAttributes
          ? 'completed'
          : String(last.eventType),
    });
    runId = events[0].workflowExecutionStartedEventAttributes?.continuedExecutionRunId || null;
  }
  expect(chain.length).toBeGreaterThanOrEqual(2);
  expect(chain).toHaveLength(rest.summary.runs);
  expect(chain.map((r) => r.ended)).toEqual([...Array(chain.length - 1).fill('continued_as_new'), 'completed']);
  expect(chain.map((r) => r.drains)).toEqual(Array(chain.length).fill(concurrency));
  expect(rest.summary.slices).toBe(chain.length * concurrency);
  expect(Math.max(...chain.map((x) => x.events))).toBeLessThanOrEqual(40);
  expect(Math.max(...chain.map((x) => x.bytes))).toBeLessThan(32 * 1024);
});

test('failure messages are encrypted in the history too, and readable through the codec', async () => {
  const workflowId = `${p.config.ingest.workflowId}-bad-options`;
  const handle = await p.client.workflow.start('ingestWorkflow', {
    workflowId,
    taskQueue: p.config.temporal.taskQueue,
    args: [{ batchSize: 6000 }],
  });
  await expect(handle.result()).rejects.toMatchObject({
    cause: { message: expect.stringContaining('batchSize=6000 must be a whole number from 1 to 5000') },
  });
  const events = (await handle.fetchHistory()).events ?? [];
  const failed = events.find((e) => e.workflowExecutionFailedEventAttributes)?.workflowExecutionFailedEventAttributes?.failure;
  expect(
    failed?.encodedAttributes?.metadata?.encoding && Buffer.from(failed.encodedAttributes.metadata.encoding).toString(),
  ).toBe('binary/encrypted');
  expect(JSON.stringify(failed)).not.toContain('batchSize=6000');
});

// Both ways a chunk is written: the main thread's Prisma client, a drain thread's driver adapter alone (lib/platform/db.ts).
test.each(['client', 'adapter'] as const)(
  'a row the database refuses despite validation is quarantined alone; the rest of its batch is stored (through the Prisma %s)',
  async (through) => {
    const adapter = through === 'adapter' ? await connectRawSql(p.config.databaseUrl, { maxConnections: 1 }) : null;
    const raw = adapter ?? viaClient(p.db);
    const messages = SAMPLE.slice(30, 34).map((e, i) => ({
      messageId: `isolate-${through}-${i}-${Date.now()}`,
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
    await expect(insertChunk(raw, batch)).rejects.toThrow(); // the plain statement fails as a whole

    const result = await insertChunkIsolatingRejects(raw, p.keyring, batch).finally(() => adapter?.close());
    expect(result).toMatchObject({
      persisted: 3,
      quarantined: 1,
      quarantinedByReason: { 'db_rejected:22003': 1 },
      alreadySeen: 0,
    });
    const ids = messages.map((m) => m.messageId);
    expect((await pg.query('SELECT count(*)::int AS n FROM ingested_messages WHERE message_id = ANY($1)', [ids])).rows[0].n).toBe(
      4,
    );
    const q = await pg.query('SELECT message_id, reasons, body_ciphertext, pii_key_id FROM quarantine WHERE message_id = $1', [
      ids[2],
    ]);
    expect(q.rows[0].reasons).toEqual(['db_rejected:22003']);
    const body = open(p.keyring, { keyId: q.rows[0].pii_key_id, blob: q.rows[0].body_ciphertext }, `${ids[2]}:body`).toString();
    expect(JSON.parse(body)).toMatchObject({ messageId: ids[2], userId: SAMPLE[32].user_id, appVersionMajor: 3_000_000_000 });
    expect(findPlaintext([{ where: 'rejected body', value: body }], SAMPLE_PII)).toEqual([]);
  },
);

test('messages held by a receiver that died are waited for, not left behind', async () => {
  const bodies = generateBodies(15, { seed: 11 });
  await sendMessages(p.sqs, p.config.sqs.queueUrl, bodies.slice(0, 5));
  // A worker that received these and died: invisible for 4 s, never deleted.
  const held = await receiveMessages(p.sqs, p.config.sqs.queueUrl, {
    maxMessages: 10,
    waitTimeSeconds: 1,
    visibilityTimeoutSeconds: 4,
    concurrency: 1,
  });
  expect(held).toHaveLength(5);
  await sendMessages(p.sqs, p.config.sqs.queueUrl, bodies.slice(5));
  const run = await runIngest(p.client, p.config, optionsFromConfig(p.config.ingest));
  expect(run.summary).toMatchObject({ received: 15, alreadySeen: 0, stopReason: 'queue_empty', leftInQueue: null });
  expect(await getApproximateCounts(p.sqs, p.config.sqs.queueUrl)).toEqual({ visible: 0, inFlight: 0 });
});

test('a worker killed in the middle of a drain: every message stored exactly once, and the run finishes', async () => {
  const bodies = generateBodies(4000, { seed: 21, malformedShare: 0.02 });
  const ids = await sendMessages(p.sqs, p.config.sqs.queueUrl, bodies);
  // This file's in-process worker sits this one out; two worker.ts processes take its place, one of them killed.
  await p.stopWorker();
  // Two drain threads each (the default is one), so a drain split over threads is what dies.
  const env = { ...p.env, WORKER_DRAIN_THREADS: '2' };
  const killed = await startWorkerProcess(env);
  const run = runIngest(p.client, p.config, {
    ...optionsFromConfig(p.config.ingest),
    batchSize: 200,
    receiveConcurrency: 2,
    visibilityTimeoutSeconds: 5,
  });
  for (let stored = 0; stored < 400;) {
    await new Promise((r) => setTimeout(r, 100));
    stored = await count(`SELECT count(*) AS n FROM ingested_messages WHERE message_id = ANY('{${ids.join(',')}}')`);
  }
  await killed('SIGKILL');
  const before = await count(`SELECT count(*) AS n FROM ingested_messages WHERE message_id = ANY('{${ids.join(',')}}')`);
  expect(before).toBeLessThan(ids.length); // the kill struck mid-drain
  const survivor = await startWorkerProcess(env);
  try {
    const { summary } = await run;
    expect(summary.stopReason).toBe('queue_empty');
    const { rows } = await pg.query(
      `SELECT (SELECT count(*) FROM ingested_messages WHERE message_id = ANY($1))::int AS ledger,
              (SELECT count(*) FROM user_logins WHERE message_id = ANY($1))::int AS rows,
              (SELECT count(*) FROM quarantine WHERE message_id = ANY($1))::int AS quarantine`,
      [ids],
    );
    expect(rows[0].ledger).toBe(ids.length);
    expect(rows[0].rows + rows[0].quarantine).toBe(ids.length);
    // The summary equals the database, the killed attempt's unreported commits included.
    expect({ persisted: summary.persisted, quarantined: summary.quarantined }).toEqual({
      persisted: rows[0].rows,
      quarantined: rows[0].quarantine,
    });
    expect(summary.received - summary.alreadySeen).toBeGreaterThanOrEqual(ids.length);
    expect(await getApproximateCounts(p.sqs, p.config.sqs.queueUrl)).toEqual({ visible: 0, inFlight: 0 });
  } finally {
    await survivor();
    await p.restartWorker();
  }
});

test('a flood of multi-byte bodies at and over the 8 KiB cut is quarantined by its byte size, and the messages behind it flow', async () => {
  const cjk = (bytes: number) => '界'.repeat(Math.floor(bytes / 3)) + 'a'.repeat(bytes % 3); // 3 bytes a character
  const huge = Array.from({ length: 300 }, (_, i) => `{"user_id":"${i}","pad":"${cjk(27_000)}"}`); // ~27 KB each: 8 MB in all
  const atCut = `"${cjk(MAX_BODY_BYTES - 2)}"`; // exactly 8,192 bytes: kept whole, a JSON string, not an event
  const overCut = `"${cjk(MAX_BODY_BYTES - 1)}"`; // 8,193 bytes
  expect([Buffer.byteLength(atCut), Buffer.byteLength(overCut)]).toEqual([MAX_BODY_BYTES, MAX_BODY_BYTES + 1]);
  const behind = VALID_SAMPLE.slice(0, 20).map((e, i) => JSON.stringify({ ...e, user_id: `behind-${i}` }));
  const ids = await sendMessages(p.sqs, p.config.sqs.queueUrl, [...huge, atCut, overCut, ...behind]);
  const run = await ingest();
  expect(run.summary).toMatchObject({ received: 322, quarantined: 302, persisted: 20, stopReason: 'queue_empty' });
  expect(run.summary.quarantinedByReason.body_too_large).toBe(301);
  const { rows } = await pg.query(
    'SELECT message_id, reasons, body_bytes, body_truncated, body_ciphertext, pii_key_id FROM quarantine WHERE message_id = ANY($1)',
    [ids],
  );
  const byId = new Map(rows.map((r) => [r.message_id, r]));
  const hugeRow = byId.get(ids[0]);
  expect(hugeRow).toMatchObject({ reasons: ['body_too_large'], body_bytes: Buffer.byteLength(huge[0]), body_truncated: true });
  // The sealed part is the body's first 8 KiB, cut at a character boundary.
  const kept = open(p.keyring, { keyId: hugeRow.pii_key_id, blob: hugeRow.body_ciphertext }, `${ids[0]}:body`).toString('utf8');
  expect(Buffer.byteLength(kept)).toBeLessThanOrEqual(MAX_BODY_BYTES);
  expect(Buffer.byteLength(kept)).toBeGreaterThan(MAX_BODY_BYTES - 3);
  expect(huge[0].startsWith(kept)).toBe(true);
  expect(byId.get(ids[300])).toMatchObject({ reasons: ['not_an_object'], body_bytes: MAX_BODY_BYTES, body_truncated: false });
  expect(byId.get(ids[301])).toMatchObject({ reasons: ['body_too_large'], body_bytes: MAX_BODY_BYTES + 1, body_truncated: true });
  expect(await count(`SELECT count(*) AS n FROM user_logins WHERE user_id LIKE 'behind-%'`)).toBe(20);
});

test('the largest batch size, concurrency, pollers and commits the options allow complete a drain', async () => {
  const ids = await sendMessages(p.sqs, p.config.sqs.queueUrl, generateBodies(3000, { seed: 5 }));
  const max = Object.fromEntries(
    (['batchSize', 'concurrency', 'receiveConcurrency', 'commitsInFlight'] as const).map((k) => [k, INGEST_LIMITS[k].max]),
  );
  const run = await runIngest(p.client, p.config, { ...optionsFromConfig(p.config.ingest), ...max });
  expect(run.summary).toMatchObject({ received: 3000, stopReason: 'queue_empty' });
  expect(run.summary.persisted + run.summary.quarantined).toBe(3000);
  expect(await count(`SELECT count(*) AS n FROM ingested_messages WHERE message_id = ANY('{${ids.join(',')}}')`)).toBe(3000);
});

test('a commit held up longer than the visibility timeout keeps its messages: visibility is extended, nothing is received twice', async () => {
  const ids = await sendMessages(p.sqs, p.config.sqs.queueUrl, generateBodies(50, { seed: 31 }));
  // The database stalls: a lock the commit waits behind for 12 s, more than twice the 5 s visibility.
  const blocker = new PgClient({ connectionString: p.config.databaseUrl });
  await blocker.connect();
  await blocker.query('BEGIN');
  await blocker.query('LOCK TABLE ingested_messages IN ACCESS EXCLUSIVE MODE');
  const run = runIngest(p.client, p.config, { ...optionsFromConfig(p.config.ingest), visibilityTimeoutSeconds: 5 });
  // Another receiver, 8 s in (past the visibility timeout): a held message must not be visible to it.
  await new Promise((r) => setTimeout(r, 8_000));
  const stolen = await receiveMessages(p.sqs, p.config.sqs.queueUrl, {
    maxMessages: 10,
    waitTimeSeconds: 1,
    visibilityTimeoutSeconds: 1,
    concurrency: 1,
  });
  await new Promise((r) => setTimeout(r, 3_000));
  await blocker.query('COMMIT');
  await blocker.end();
  const { summary } = await run;
  expect(stolen).toEqual([]);
  expect(summary.visibilityExtended).toBeGreaterThan(0);
  expect(summary).toMatchObject({ received: 50, alreadySeen: 0, ackFailed: 0, stopReason: 'queue_empty' });
  expect(await count(`SELECT count(*) AS n FROM ingested_messages WHERE message_id = ANY('{${ids.join(',')}}')`)).toBe(50);
  expect(await getApproximateCounts(p.sqs, p.config.sqs.queueUrl)).toEqual({ visible: 0, inFlight: 0 });
});

test('a drain ends after exactly two empty receives per poller once the queue is empty, with no receive left under way', async () => {
  const queueUrl = await createQueue(p.sqs, `q-end-${Date.now()}`);
  await sendMessages(p.sqs, queueUrl, generateBodies(40, { seed: 19 }));
  // A client of its own that counts the ReceiveMessage calls that came back empty.
  const sqs = createSqsClient(p.config.sqs);
  let emptyReceives = 0;
  sqs.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      const messages = (out.output as { Messages?: unknown[] }).Messages;
      if (context.commandName === 'ReceiveMessageCommand' && !messages?.length) emptyReceives++;
      return out;
    },
    { step: 'initialize' },
  );
  try {
    const pollers = 4;
    const result = await drain(
      { sqs, queueUrl, db: viaClient(p.db), keyring: p.keyring },
      drainInput(withDefaults({ receiveConcurrency: pollers }), 1000),
      new AbortController().signal,
    );
    expect(result).toMatchObject({ endedBy: 'empty', received: 40 });
    // A long poll of an empty queue comes back after a second, the others at once, so every
    // empty receive follows the last message. Each poller rests after its second; the drain
    // ends when the last one does, without another round from the pollers that came back first.
    expect(emptyReceives).toBe(2 * pollers);
  } finally {
    sqs.destroy();
  }
});
