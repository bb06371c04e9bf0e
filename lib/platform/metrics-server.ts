// The worker's HTTP endpoint at METRICS_ADDRESS (off unless set):
//   GET /metrics  Prometheus text: the pipeline's metrics (lib/ingest/metrics.ts) and Node's process
//                 metrics, followed by the Temporal SDK's own runtime telemetry (workflow and
//                 activity task latencies, pollers, slots, sticky cache …), which the SDK's
//                 exporter serves on a private loopback port; one scrape target, one port.
//   GET /readyz   200 while the worker polls its task queue, 503 otherwise (starting,
//                 draining on SIGTERM): for Kubernetes' readiness probe and compose.
//   GET /healthz  200 while the process serves HTTP: the liveness probe.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectProcessMetrics, registry } from '../ingest/metrics';

export interface MetricsServerOptions {
  /** host:port, e.g. 0.0.0.0:9464 (port 0: any free one). */
  address: string;
  /** The SDK's Prometheus exporter (127.0.0.1:port), when it runs. */
  sdkMetricsAddress?: string | null;
  /** Whether the worker is ready (polling). */
  ready: () => { ready: boolean; state: string };
}

export interface RunningMetricsServer {
  url: string;
  close(): Promise<void>;
}

export function parseHostPort(address: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(address);
  if (!m || Number(m[2]) > 65535)
    throw new Error(`METRICS_ADDRESS must be host:port, e.g. 0.0.0.0:9464 (got ${JSON.stringify(address)})`);
  return { host: m[1].replace(/^\[(.*)\]$/, '$1') || '0.0.0.0', port: Number(m[2]) };
}

async function sdkMetrics(address: string): Promise<string> {
  try {
    const res = await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(2000) });
    return res.ok ? await res.text() : `# Temporal SDK metrics unavailable: HTTP ${res.status}\n`;
  } catch (err) {
    return `# Temporal SDK metrics unavailable: ${(err as Error).message}\n`;
  }
}

export async function startMetricsServer(o: MetricsServerOptions): Promise<RunningMetricsServer> {
  const { host, port } = parseHostPort(o.address);
  collectProcessMetrics();
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'GET only\n');
    if (path === '/healthz') return send(200, 'text/plain', 'ok\n');
    if (path === '/readyz') {
      const r = o.ready();
      return send(r.ready ? 200 : 503, 'application/json', JSON.stringify(r) + '\n');
    }
    if (path === '/metrics') {
      Promise.all([registry.metrics(), o.sdkMetricsAddress ? sdkMetrics(o.sdkMetricsAddress) : Promise.resolve('')]).then(
        ([own, sdk]) => send(200, registry.contentType, own + (own.endsWith('\n') ? '' : '\n') + sdk),
        (err: Error) => send(500, 'text/plain', `metrics failed: ${err.message}\n`),
      );
      return;
    }
    send(404, 'text/plain', 'try /metrics, /readyz or /healthz\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`METRICS_ADDRESS ${o.address} is already in use: pick another port`) : err),
    );
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${bound.port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
