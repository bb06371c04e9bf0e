// The HTTP plumbing of the small servers here (the codec server, lib/pii/codec-server.ts):
// errors answered as `{"error": message}`, a body read with a size limit, a path as the
// protocol sees it, and a server that logs one line per request (method, path as the
// caller redacts it, status, duration), answers a failed request with its error, and
// listens and closes. Nothing here knows what the server serves.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** After a 413, at most this much more of the refused body is read and thrown away before the connection is cut. */
const MAX_DISCARD_BYTES = 16 * 1024 * 1024;

/** An error answered to the client as `{"error": message}` with `status`. Messages never carry payload content. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** The body of a request, refused with a 413 once it is larger than `maxBytes`. */
export function readBody(req: http.IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      reject(tooLarge(maxBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        done = true;
        chunks.length = 0;
        req.off('data', onData);
        reject(tooLarge(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => {
      if (!done) resolve(Buffer.concat(chunks, size));
    });
    req.on('error', (err) => {
      if (!done) reject(err);
      done = true;
    });
  });
}

const tooLarge = (maxBytes: number) =>
  new HttpError(
    413,
    `request body is larger than ${maxBytes} bytes${maxBytes % 1048576 === 0 ? ` (${maxBytes / 1048576} MiB)` : ''}`,
    { Connection: 'close' },
  );

/**
 * Reads and discards what is left of a refused body, so the client gets to read the answer
 * instead of a connection reset; past MAX_DISCARD_BYTES the connection is cut.
 */
function discardRest(req: http.IncomingMessage): void {
  if (req.readableEnded) return;
  let discarded = 0;
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > MAX_DISCARD_BYTES) req.socket.destroy();
  });
  req.resume();
}

/** Path without the query, with runs of slashes collapsed (`//decode` → `/decode`). */
export function pathOf(url: string | undefined): string {
  const raw = (url ?? '/').split(/[?#]/, 1)[0];
  return raw.replace(/\/{2,}/g, '/') || '/';
}

/** What the log may show of a client-chosen string: printable ASCII, bounded. */
export const loggable = (s: string, max: number) => {
  const clean = s.replace(/[^\x21-\x7e]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
};

export interface RunningServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface ServeOptions {
  port: number;
  host: string;
  /** One line per request; a logger that throws does not take the server down. */
  log: (line: string) => void;
  /** The path as it may be logged (a secret in it redacted). */
  loggablePath: (path: string) => string;
  /** Named in the answer to an unexpected error: `internal error in <name>`. */
  name: string;
}

/**
 * Serves `handle` (given the request's path, see pathOf) until close(). An HttpError it
 * throws is answered as such; anything else as a 500 that says nothing more.
 */
export async function serve(
  handle: (req: http.IncomingMessage, res: http.ServerResponse, path: string) => Promise<void>,
  { port: wantedPort, host, log, loggablePath, name }: ServeOptions,
): Promise<RunningServer> {
  const server = http.createServer((req, res) => {
    const started = process.hrtime.bigint();
    const path = pathOf(req.url);
    res.on('close', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const status = res.writableFinished ? String(res.statusCode) : `${res.headersSent ? res.statusCode : '-'}(aborted)`;
      try {
        log(`${loggable(req.method ?? '-', 16)} ${loggable(loggablePath(path), 200)} ${status} ${ms.toFixed(1)}ms`);
      } catch {
        // a failing logger must not take the server down
      }
    });
    handle(req, res, path).catch((err: unknown) => {
      const httpError = err instanceof HttpError ? err : new HttpError(500, `internal error in ${name}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      for (const [name, value] of Object.entries(httpError.headers)) res.setHeader(name, value);
      res.writeHead(httpError.status, { 'Content-Type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ error: httpError.message }));
      if (httpError.status === 413) discardRest(req);
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(wantedPort, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let closing: Promise<void> | null = null;
  return {
    url,
    port,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
