// Operating the pipeline as its operators do, on real services: the worker as `npx ts-node
// worker.ts` with METRICS_ADDRESS and LOG_FORMAT=json, the CLI as subprocesses. A drain of
// some thousands of messages is scraped while it provably runs (a few messages are held by
// another receiver, so the run cannot end before they are released), and after; the CLI's
// exit codes for a run that ends `messages_unavailable` and for one that drains; `runs
// --json` lists both with their counts from the search attributes; every log line of the
// worker and the CLI is one JSON object and holds no PII value.
import { ChangeMessageVisibilityBatchCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { generateBodies } from '../../lib/ingest/load';
import { sendMessages } from '../../lib/ingest/sqs';
import { freePort } from '../../services/ports';
import { runClient, startPipeline, type Pipeline } from './helpers';

const MESSAGES = 3000;
const HELD = 10;
let p: Pipeline;
let metricsUrl: string;

/** The CLI as a subprocess; a non-zero exit resolves too (with its code), for the exit-code checks. */
const client = (args: string[]): Promise<{ code?: number; stdout: string; stderr: string }> =>
  runClient(p, args).catch((err: { code: number; stdout: string; stderr: string }) => err);

/** One scrape, parsed: `name{labels}` → value. */
async function scrape(): Promise<{ text: string; get(series: string): number }> {
  const res = await fetch(`${metricsUrl}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) values.set(m[1], Number(m[2]));
  }
  return { text, get: (series) => values.get(series) ?? 0 };
}
const outcome = (o: string) => `login_ingest_messages_total{outcome="${o}"}`;

beforeAll(async () => {
  const address = `127.0.0.1:${await freePort()}`;
  metricsUrl = `http://${address}`;
  p = await startPipeline(
    'operate',
    { METRICS_ADDRESS: address, LOG_FORMAT: 'json', LOG_LEVEL: 'INFO', INGEST_BATCH_SIZE: '50' },
    { subprocessWorker: true },
  );
});

afterAll(async () => {
  await p?.close();
});

test('metrics move during a drain; exit codes 3 (messages_unavailable) and 0 (drained); runs --json; JSON logs without PII', async () => {
  const ready = await fetch(`${metricsUrl}/readyz`);
  expect([ready.status, await ready.json()]).toEqual([200, { ready: true, state: 'RUNNING' }]);
  const before = await scrape();
  expect(before.get(outcome('received'))).toBe(0);

  const bodies = generateBodies(MESSAGES, { malformedShare: 0.01, duplicateShare: 0.05, seed: 12 });
  await sendMessages(p.sqs, p.config.sqs.queueUrl, bodies);
  // Another receiver holds a few messages for ten minutes: the run cannot end while we look.
  const held = await p.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: p.config.sqs.queueUrl, MaxNumberOfMessages: HELD, VisibilityTimeout: 600 }),
  );
  expect(held.Messages).toHaveLength(HELD);

  const first = client(['ingest', '--json']);
  // Wait until the worker has stored everything it can get (received counts first, stored
  // ones when committed) and has seen the held ones in flight.
  let during = await scrape();
  const stored = () =>
    during.get(outcome('persisted')) + during.get(outcome('quarantined')) + during.get(outcome('already_seen'));
  while (
    during.get(outcome('received')) < MESSAGES - HELD ||
    stored() < MESSAGES - HELD ||
    during.get('login_ingest_queue_depth{state="in_flight"}') !== HELD
  ) {
    await new Promise((r) => setTimeout(r, 250));
    during = await scrape();
  }
  const description = await p.client.workflow.getHandle(p.config.ingest.workflowId).describe();
  expect(description.status.name).toBe('RUNNING'); // the scrape above was taken during the run
  expect(during.get(outcome('received'))).toBe(MESSAGES - HELD);
  expect(during.get(outcome('persisted')) + during.get(outcome('quarantined')) + during.get(outcome('already_seen'))).toBe(
    MESSAGES - HELD,
  );
  for (const stage of ['receive', 'transform', 'persist', 'acknowledge']) {
    expect(during.get(`login_ingest_stage_seconds_total{stage="${stage}"}`)).toBeGreaterThan(0);
  }
  // The SDK's own runtime telemetry, served on the same port.
  expect(during.text).toMatch(/^temporal_workflow_task_execution_latency_seconds_count\{/m);
  expect(during.text).toMatch(/^temporal_activity_execution_latency_seconds_count\{/m);

  // Not released: the run gives up on them after its patience and says so, with exit code 3.
  const unavailable = await first;
  expect(unavailable).toMatchObject({ code: 3 });
  const firstSummary = JSON.parse((unavailable as { stdout: string }).stdout);
  expect(firstSummary).toMatchObject({
    stopReason: 'messages_unavailable',
    received: MESSAGES - HELD,
    leftInQueue: { visible: 0, inFlight: HELD },
  });

  // Released: the next run drains them, exit code 0.
  await p.sqs.send(
    new ChangeMessageVisibilityBatchCommand({
      QueueUrl: p.config.sqs.queueUrl,
      Entries: held.Messages!.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 0 })),
    }),
  );
  const drained = await client(['ingest', '--json']);
  expect((drained as { code?: number }).code ?? 0).toBe(0);
  const secondSummary = JSON.parse(drained.stdout);
  expect(secondSummary).toMatchObject({ stopReason: 'queue_empty', received: HELD });

  const after = await scrape();
  const sum = (k: 'persisted' | 'quarantined' | 'alreadySeen') => firstSummary[k] + secondSummary[k];
  expect(after.get(outcome('received'))).toBe(MESSAGES);
  expect(after.get(outcome('persisted'))).toBe(sum('persisted'));
  expect(after.get(outcome('quarantined'))).toBe(sum('quarantined'));
  expect(after.get(outcome('already_seen'))).toBe(sum('alreadySeen'));
  expect(after.get(outcome('delete_failed'))).toBe(0);
  expect(sum('quarantined')).toBeGreaterThan(0);
  for (const [reason, n] of Object.entries(firstSummary.quarantinedByReason as Record<string, number>)) {
    expect(after.get(`login_ingest_quarantined_total{reason="${reason}"}`)).toBe(
      n + (secondSummary.quarantinedByReason[reason] ?? 0),
    );
  }
  expect(after.get('login_ingest_queue_depth{state="visible"}') + after.get('login_ingest_queue_depth{state="in_flight"}')).toBe(
    0,
  );

  // Both drains, newest first, with their numbers (visibility is eventually consistent: wait
  // for it). A drain that continued as new also lists its earlier runs, with the totals so far.
  type Row = {
    status: string;
    stopReason: string | null;
    received: number | null;
    persisted: number | null;
    quarantined: number | null;
  };
  let completed: Row[];
  for (;;) {
    const listed = await client(['runs', '--json']);
    completed = (JSON.parse(listed.stdout) as Row[]).filter((r) => r.status === 'COMPLETED');
    if (completed.length >= 2 && completed.every((r) => r.stopReason !== 'running')) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  expect(completed.slice(0, 2)).toEqual([
    expect.objectContaining({
      stopReason: 'queue_empty',
      received: HELD,
      persisted: secondSummary.persisted,
      quarantined: secondSummary.quarantined,
    }),
    expect.objectContaining({
      stopReason: 'messages_unavailable',
      received: MESSAGES - HELD,
      persisted: firstSummary.persisted,
      quarantined: firstSummary.quarantined,
    }),
  ]);
  const table = await client(['runs']);
  expect(table.stdout.split('\n')[0]).toMatch(/^started\s+status\s+stop reason\s+received\s+persisted\s+quarantined/);

  // Logs: every line of the worker and of the CLI a JSON object with level, time and
  // message; workflow IDs and counts present; no IP or device ID of the messages anywhere.
  const workerLines = p.workerOutput.join('').split('\n').filter(Boolean);
  const cliLines = [unavailable, drained].flatMap((r) => r.stderr.split('\n').filter(Boolean));
  for (const line of [...workerLines, ...cliLines]) {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new Error(`not a JSON log line: ${line}`);
    }
    expect(parsed).toEqual(
      expect.objectContaining({ level: expect.any(String), time: expect.any(String), message: expect.any(String) }),
    );
  }
  const persistedLines = workerLines.map((l) => JSON.parse(l)).filter((l) => l.message === 'Drained');
  expect(persistedLines.length).toBeGreaterThan(0);
  expect(persistedLines[0]).toEqual(
    expect.objectContaining({ workflowId: p.config.ingest.workflowId, runId: expect.any(String), persisted: expect.any(Number) }),
  );
  expect(cliLines.map((l) => JSON.parse(l)).some((l) => l.message === 'progress' && typeof l.received === 'number')).toBe(true);
  const pii = bodies.flatMap((b) => {
    try {
      const e = JSON.parse(b);
      return [e.ip, e.device_id].filter((v) => typeof v === 'string' && v.length >= 11);
    } catch {
      return [];
    }
  });
  expect(pii.length).toBeGreaterThan(MESSAGES);
  const allLogs = [...workerLines, ...cliLines].join('\n');
  expect(pii.filter((v) => allLogs.includes(v))).toEqual([]);
}, 400_000); // the messages_unavailable run waits out its patience (a visibility timeout and 30 s)
