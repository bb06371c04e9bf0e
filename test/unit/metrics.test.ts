// The metrics API and the metrics server over real HTTP (the SDK exporter replaced by a
// small HTTP server that answers like it, so the merge is checked without a worker).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  drainRecorder,
  recordDeleteFailed,
  recordOutcomes,
  recordReceived,
  registry,
  setQueueDepth,
  startStage,
  type DrainTotals,
} from '../../lib/ingest/metrics';
import { parseHostPort, startMetricsServer } from '../../lib/platform/metrics-server';

async function value(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const v = metric?.values.find((x) => Object.entries(labels).every(([k, l]) => (x.labels as Record<string, unknown>)[k] === l));
  return v?.value;
}

test('the recording API moves the counters, histograms and gauge it names', async () => {
  const before = (await value('login_ingest_messages_total', { outcome: 'persisted' }))!;
  expect(before).toBe(0); // every outcome series exists from the start
  const endReceive = startStage('receive');
  recordReceived(10, endReceive);
  recordOutcomes(
    {
      persisted: 7,
      quarantined: 2,
      quarantinedByReason: { invalid_ip: 2, 'missing_field:ip': 1 },
      alreadySeen: 1,
      duplicateLogins: 3,
    },
    startStage('persist'),
  );
  recordDeleteFailed(1, startStage('acknowledge'), 10);
  setQueueDepth({ visible: 40, inFlight: 5 });

  expect(await value('login_ingest_messages_total', { outcome: 'received' })).toBe(10);
  expect(await value('login_ingest_messages_total', { outcome: 'persisted' })).toBe(7);
  expect(await value('login_ingest_messages_total', { outcome: 'quarantined' })).toBe(2);
  expect(await value('login_ingest_messages_total', { outcome: 'already_seen' })).toBe(1);
  expect(await value('login_ingest_messages_total', { outcome: 'delete_failed' })).toBe(1);
  expect(await value('login_ingest_quarantined_total', { reason: 'missing_field:ip' })).toBe(1);
  expect(await value('login_ingest_duplicate_logins_total')).toBe(3);
  expect(await value('login_ingest_stage_messages_total', { stage: 'persist' })).toBe(10);
  expect(await value('login_ingest_queue_depth', { state: 'in_flight' })).toBe(5);
  const text = await registry.metrics();
  expect(text).toMatch(/^login_ingest_stage_duration_seconds_count\{stage="receive"\} 1$/m);
  expect(text).toMatch(/^login_ingest_stage_duration_seconds_count\{stage="acknowledge"\} 1$/m);
});

test("a drain's running totals are recorded once each: only what changed since the last report, from a retry's carried totals on", async () => {
  const received = async () => (await value('login_ingest_messages_total', { outcome: 'received' }))!;
  const base = await received();
  const t = (n: number, reasons: Record<string, number>, ms: number): DrainTotals => ({
    received: n,
    persisted: n - 1,
    quarantined: 1,
    quarantinedByReason: reasons,
    alreadySeen: 0,
    duplicateLogins: 0,
    ackFailed: 0,
    stageMs: { receive: ms, transform: ms, persist: ms, acknowledge: ms },
  });
  const carried = t(100, { unknown_field: 1 }, 1000); // what an earlier attempt had already reported
  const record = drainRecorder(carried);
  record(t(300, { unknown_field: 1 }, 3000));
  record(t(300, { unknown_field: 1 }, 3000)); // the same totals again (the result after the last progress): nothing more
  record({ ...t(500, { unknown_field: 1, 'too_long:locale': 2 }, 4000), quarantined: 3 });
  expect((await received()) - base).toBe(400);
  expect(await value('login_ingest_quarantined_total', { reason: 'too_long:locale' })).toBe(2);
  expect(await value('login_ingest_stage_seconds_total', { stage: 'persist' })).toBeCloseTo(3, 6);
});

describe('metrics server', () => {
  let sdk: http.Server;
  let sdkAddress: string;
  beforeAll(async () => {
    sdk = http.createServer((req, res) =>
      res.end(req.url === '/metrics' ? '# TYPE temporal_request_total counter\ntemporal_request_total 5\n' : 'no'),
    );
    await new Promise<void>((r) => sdk.listen(0, '127.0.0.1', () => r()));
    sdkAddress = `127.0.0.1:${(sdk.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => sdk.close(() => r())));

  it('serves ours and the SDK metrics on one port, readiness by worker state, and health', async () => {
    let state = 'INITIALIZED';
    const server = await startMetricsServer({
      address: '127.0.0.1:0',
      sdkMetricsAddress: sdkAddress,
      ready: () => ({ ready: state === 'RUNNING', state }),
    });
    try {
      const metrics = await fetch(`${server.url}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get('content-type')).toContain('text/plain');
      const body = await metrics.text();
      expect(body).toContain('# TYPE login_ingest_messages_total counter');
      expect(body).toContain('temporal_request_total 5');
      expect(body).toContain('process_cpu_seconds_total');

      expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
      state = 'RUNNING';
      const ready = await fetch(`${server.url}/readyz`);
      expect([ready.status, await ready.json()]).toEqual([200, { ready: true, state: 'RUNNING' }]);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${server.url}/nope`)).status).toBe(404);
      expect((await fetch(`${server.url}/metrics`, { method: 'POST' })).status).toBe(405);
    } finally {
      await server.close();
    }
  });

  it('says so in the scrape when the SDK exporter is away, and still serves ours', async () => {
    const server = await startMetricsServer({
      address: '127.0.0.1:0',
      sdkMetricsAddress: '127.0.0.1:1',
      ready: () => ({ ready: true, state: 'RUNNING' }),
    });
    try {
      const body = await (await fetch(`${server.url}/metrics`)).text();
      expect(body).toContain('login_ingest_messages_total');
      expect(body).toMatch(/^# Temporal SDK metrics unavailable: /m);
    } finally {
      await server.close();
    }
  });

  it('names a port in use, and a malformed address', async () => {
    const first = await startMetricsServer({ address: '127.0.0.1:0', ready: () => ({ ready: true, state: 'RUNNING' }) });
    try {
      const port = new URL(first.url).port;
      await expect(
        startMetricsServer({ address: `127.0.0.1:${port}`, ready: () => ({ ready: true, state: 'RUNNING' }) }),
      ).rejects.toThrow(`METRICS_ADDRESS 127.0.0.1:${port} is already in use`);
    } finally {
      await first.close();
    }
    expect(() => parseHostPort('9464')).toThrow(/METRICS_ADDRESS must be host:port/);
    expect(parseHostPort(':9464')).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(parseHostPort('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
  });
});
