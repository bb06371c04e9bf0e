// A fault-injecting HTTP proxy in front of the SQS emulator: the workers talk to it
// (AWS_ENDPOINT_URL_SQS), the chaos runner switches its mode. Listens on 127.0.0.1 only.
//   pass  — forward every request
//   fail  — answer every request 500 InternalError (the SDK retries, then the drain does)
//   slow  — hold every request `delayMs` before forwarding it
//   reset — destroy the connection without an answer
// Forced redeliveries: a share of DeleteMessageBatch calls is answered as if it succeeded
// but not forwarded; the proxy instead makes those messages visible again at once
// (ChangeMessageVisibilityBatch, timeout 0), so the pipeline receives committed messages a
// second time, as after a lost acknowledgement, without waiting out a visibility timeout.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ChangeMessageVisibilityBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';

export type ProxyMode = 'pass' | 'fail' | 'slow' | 'reset';

export interface SqsProxy {
  endpoint: string;
  setMode(mode: ProxyMode, delayMs?: number): void;
  stats(): {
    requests: number;
    failed: number;
    slowed: number;
    reset: number;
    lostDeletes: number;
    redelivered: number;
    redeliverErrors: number;
  };
  close(): Promise<void>;
}

export async function startSqsProxy(opts: {
  upstream: string;
  /** Talks to the emulator directly, for the forced redeliveries. */
  admin: SQSClient;
  /** Share of DeleteMessageBatch calls to lose and redeliver (0..1). */
  redeliverShare: number;
  rnd: () => number;
}): Promise<SqsProxy> {
  const upstream = new URL(opts.upstream);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  let mode: ProxyMode = 'pass';
  let delayMs = 0;
  const stats = { requests: 0, failed: 0, slowed: 0, reset: 0, lostDeletes: 0, redelivered: 0, redeliverErrors: 0 };
  const pending = new Set<Promise<unknown>>();

  const forward = (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) => {
    const out = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
        agent,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    out.end(body);
  };

  const redeliver = (body: Buffer, res: http.ServerResponse): boolean => {
    let call: { QueueUrl?: string; Entries?: { Id: string; ReceiptHandle: string }[] };
    try {
      call = JSON.parse(body.toString('utf8')) as typeof call;
    } catch {
      return false;
    }
    if (!call.QueueUrl || !Array.isArray(call.Entries) || call.Entries.length === 0) return false;
    stats.lostDeletes += call.Entries.length;
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
    res.end(JSON.stringify({ Successful: call.Entries.map((e) => ({ Id: e.Id })), Failed: [] }));
    const p = opts.admin
      .send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: call.QueueUrl,
          Entries: call.Entries.map((e) => ({ Id: e.Id, ReceiptHandle: e.ReceiptHandle, VisibilityTimeout: 0 })),
        }),
      )
      .then(
        (r) => (stats.redelivered += r.Successful?.length ?? 0),
        () => stats.redeliverErrors++,
      )
      .finally(() => pending.delete(p));
    pending.add(p);
    return true;
  };

  const server = http.createServer((req, res) => {
    stats.requests++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (mode === 'reset') {
        stats.reset++;
        req.socket.destroy();
        return;
      }
      if (mode === 'fail') {
        stats.failed++;
        res.writeHead(500, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-query-error': 'InternalError;Receiver' });
        res.end(JSON.stringify({ __type: 'com.amazonaws.sqs#InternalError', message: 'chaos: injected failure' }));
        return;
      }
      const target = String(req.headers['x-amz-target'] ?? '');
      if (
        target.endsWith('.DeleteMessageBatch') &&
        opts.redeliverShare > 0 &&
        opts.rnd() < opts.redeliverShare &&
        redeliver(body, res)
      )
        return;
      if (mode === 'slow') {
        stats.slowed++;
        setTimeout(() => forward(req, body, res), delayMs);
        return;
      }
      forward(req, body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    setMode(m, d = 0) {
      mode = m;
      delayMs = d;
    },
    stats: () => ({ ...stats }),
    async close() {
      await Promise.allSettled([...pending]);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
