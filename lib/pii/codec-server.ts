// Temporal codec server: lets the Temporal Web UI and CLI show the decoded payloads of the
// ingest workflows (which lib/pii/codec.ts encrypts), but only to callers holding a bearer token.
//
// Protocol (Temporal's remote codec protocol): `POST …/decode` and `POST …/encode` take and
// answer `{"payloads": [Payload, …]}` with each Payload in its proto3 JSON form (metadata
// values and data as base64). Only the last path segment selects the endpoint, as the
// protocol requires, so `http://host:port/default` works as a per-namespace endpoint and a
// configured endpoint with a trailing slash (the UI then asks for `//decode`) still works.
//
// The server logs one line per request (method, path, status, duration) and never a payload,
// a header value or an error text that could carry one.
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

export interface CodecServerOptions {
  /** The codec to run payloads through: our EncryptionCodec. */
  codec: PayloadCodec;
  /** The bearer token every /decode and /encode request must carry (at least 32 characters). */
  token: string;
  /** Browser origins allowed to call the server (CORS), e.g. `http://localhost:8233`. Never `*`. */
  allowedOrigins: string[];
  /** 0 picks any free port. */
  port: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** One line per request: method path status duration. Never payload content or the token. */
  log?: (line: string) => void;
  /** Serve /encode too (default false: the Web UI only needs /decode). */
  allowEncode?: boolean;
}

export interface RunningCodecServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export const MIN_TOKEN_LENGTH = 32;
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

const ALLOW_METHODS = 'POST, OPTIONS';
const ALLOW_HEADERS = 'Content-Type, Authorization, X-Namespace';
const PREFLIGHT_MAX_AGE_SECONDS = '600';
/** After a 413, at most this much more of the refused body is read and thrown away before the connection is cut. */
const MAX_DISCARD_BYTES = 16 * 1024 * 1024;

/** A new token: 32 random bytes, base64url (43 characters). */
export function newCodecToken(): string {
  return crypto.randomBytes(32).toString('base64url');
}

/** An error answered to the client as `{"error": message}` with `status`. Messages never carry payload content. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function validateOptions(opts: CodecServerOptions): { origins: Set<string>; host: string } {
  if (!opts || typeof opts !== 'object') throw new Error('startCodecServer: options are required');
  if (!opts.codec || typeof opts.codec.encode !== 'function' || typeof opts.codec.decode !== 'function') {
    throw new Error('startCodecServer: codec must be a PayloadCodec (with encode and decode)');
  }
  if (typeof opts.token !== 'string' || opts.token.length < MIN_TOKEN_LENGTH) {
    throw new Error(
      `startCodecServer: token must be at least ${MIN_TOKEN_LENGTH} characters (got ${typeof opts.token === 'string' ? opts.token.length : typeof opts.token}); make one with newCodecToken()`,
    );
  }
  if (!/^[\x21-\x7e]+$/.test(opts.token)) {
    throw new Error('startCodecServer: token must be printable ASCII without spaces (it travels in an Authorization header)');
  }
  if (!Array.isArray(opts.allowedOrigins)) throw new Error('startCodecServer: allowedOrigins must be an array of origins such as http://localhost:8233');
  const origins = new Set<string>();
  for (const origin of opts.allowedOrigins) {
    if (origin === '*' || origin === 'null') {
      throw new Error(`startCodecServer: allowedOrigins cannot contain ${JSON.stringify(origin)}: list the Web UI's origins, e.g. http://localhost:8233`);
    }
    let parsed: URL;
    try {
      parsed = new URL(String(origin));
    } catch {
      throw new Error(`startCodecServer: allowed origin ${JSON.stringify(origin)} is not a URL; expected scheme://host[:port], e.g. http://localhost:8233`);
    }
    const justOrigin = parsed.pathname === '/' && !parsed.search && !parsed.hash && !parsed.username && !parsed.password;
    if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || !justOrigin || /[?#]$/.test(String(origin))) {
      throw new Error(`startCodecServer: allowed origin ${JSON.stringify(origin)} must be just scheme://host[:port] (http or https, no path), e.g. http://localhost:8233`);
    }
    origins.add(parsed.origin); // the serialised form browsers send: lower-case host, no default port
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    throw new Error(`startCodecServer: port must be a whole number from 0 to 65535 (got ${String(opts.port)})`);
  }
  const host = opts.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host === '') throw new Error('startCodecServer: host must be a non-empty string');
  return { origins, host };
}

// --- proto3 JSON <-> Payload -------------------------------------------------------------

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** proto3 JSON bytes: standard or URL-safe base64, padded or not. */
function bytesFromJson(value: unknown, where: string): Uint8Array {
  if (typeof value !== 'string') throw new HttpError(400, `${where} must be a base64 string`);
  const unpadded = value.replace(/=+$/, '');
  if (!BASE64.test(value) || unpadded.length % 4 === 1 || (value.includes('=') && value.length % 4 !== 0)) {
    throw new HttpError(400, `${where} is not valid base64`);
  }
  return new Uint8Array(Buffer.from(value, 'base64'));
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const fieldName = (name: string) => JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name);

function int64FromJson(value: unknown, where: string): string {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  if (typeof value === 'string' && /^-?\d{1,19}$/.test(value)) {
    const n = BigInt(value);
    if (n >= -(2n ** 63n) && n < 2n ** 63n) return value;
  }
  throw new HttpError(400, `${where} must be a 64-bit integer (a number or a decimal string)`);
}

function payloadFromJson(value: unknown, i: number): Payload {
  const where = `payloads[${i}]`;
  if (!isPlainObject(value)) throw new HttpError(400, `${where} must be an object with "metadata" and "data"`);
  // Maps built from client keys never use a plain {} (a "__proto__" key would set its prototype).
  const metadata = Object.create(null) as Record<string, Uint8Array>;
  let data: Uint8Array = new Uint8Array(0);
  let externalPayloads: temporal.api.common.v1.Payload.ExternalPayloadDetails[] = [];
  for (const [key, field] of Object.entries(value)) {
    if (field === null) continue; // proto3 JSON: null means the default value
    if (key === 'metadata') {
      if (!isPlainObject(field)) throw new HttpError(400, `${where}.metadata must be an object of base64 strings`);
      for (const [k, v] of Object.entries(field)) metadata[k] = bytesFromJson(v, `${where}.metadata value`);
    } else if (key === 'data') {
      data = bytesFromJson(field, `${where}.data`);
    } else if (key === 'externalPayloads' || key === 'external_payloads') {
      if (!Array.isArray(field)) throw new HttpError(400, `${where}.externalPayloads must be an array`);
      externalPayloads = field.map((detail, j) => {
        const at = `${where}.externalPayloads[${j}]`;
        if (!isPlainObject(detail)) throw new HttpError(400, `${at} must be an object`);
        const unknown = Object.keys(detail).find((k) => k !== 'sizeBytes' && k !== 'size_bytes');
        if (unknown !== undefined) throw new HttpError(400, `${at} has an unknown field ${fieldName(unknown)}`);
        const size = detail.sizeBytes ?? detail.size_bytes;
        return temporal.api.common.v1.Payload.ExternalPayloadDetails.fromObject(
          size === undefined || size === null ? {} : { sizeBytes: int64FromJson(size, `${at}.sizeBytes`) },
        );
      });
    } else {
      throw new HttpError(400, `${where} has an unknown field ${fieldName(key)} (expected metadata, data, externalPayloads)`);
    }
  }
  return externalPayloads.length ? { metadata, data, externalPayloads } : { metadata, data };
}

function payloadsFromJson(body: unknown): Payload[] {
  if (!isPlainObject(body)) throw new HttpError(400, 'request body must be a JSON object {"payloads": [...]}');
  const unknown = Object.keys(body).find((k) => k !== 'payloads');
  if (unknown !== undefined) throw new HttpError(400, `request body has an unknown field ${fieldName(unknown)} (expected only "payloads")`);
  if (body.payloads === undefined || body.payloads === null) return [];
  if (!Array.isArray(body.payloads)) throw new HttpError(400, '"payloads" must be an array');
  return body.payloads.map(payloadFromJson);
}

const base64 = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64') : '');

function payloadToJson(payload: Payload): Record<string, unknown> {
  const metadata = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(payload.metadata ?? {})) metadata[k] = base64(v);
  const json: Record<string, unknown> = { metadata, data: base64(payload.data) };
  if (payload.externalPayloads?.length) {
    // int64 travels as a decimal string in proto3 JSON.
    json.externalPayloads = payload.externalPayloads.map((d) => ({ sizeBytes: String(d.sizeBytes ?? 0) }));
  }
  return json;
}

// --- HTTP --------------------------------------------------------------------------------

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) {
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        done = true;
        chunks.length = 0;
        req.off('data', onData);
        reject(tooLarge());
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

const tooLarge = () => new HttpError(413, `request body is larger than ${MAX_BODY_BYTES} bytes (4 MiB)`, { Connection: 'close' });

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
function pathOf(url: string | undefined): string {
  const raw = (url ?? '/').split(/[?#]/, 1)[0];
  return raw.replace(/\/{2,}/g, '/') || '/';
}

/** What the log may show of a client-chosen string: printable ASCII, bounded. */
const loggable = (s: string, max: number) => {
  const clean = s.replace(/[^\x21-\x7e]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
};

export async function startCodecServer(opts: CodecServerOptions): Promise<RunningCodecServer> {
  const { origins, host } = validateOptions(opts);
  const { codec } = opts;
  const tokenHash = crypto.createHash('sha256').update(opts.token, 'utf8').digest();
  const log = opts.log ?? (() => {});

  // Hashing both sides gives equal-length buffers, so the comparison time says nothing
  // about the token's length or how much of it matched.
  const isToken = (candidate: string | null): boolean =>
    crypto.timingSafeEqual(crypto.createHash('sha256').update(candidate ?? '', 'utf8').digest(), tokenHash) && candidate !== null;
  /** The segment before the endpoint, for a capability URL: `http://host:port/<token>/decode`. */
  const pathToken = (path: string): string | null => path.split('/').filter(Boolean).slice(-2, -1)[0] ?? null;
  // The stock Web UI cannot send a static bearer token (it only forwards its own login
  // token), so the token may also be the endpoint's path: configure the UI's codec endpoint
  // as http://127.0.0.1:PORT/<token>. Either form is checked in constant time.
  const authorized = (header: string | undefined, path: string): boolean => {
    const match = /^Bearer +(\S+) *$/i.exec(header ?? '');
    const byHeader = isToken(match ? match[1] : null);
    const byPath = isToken(pathToken(path));
    return byHeader || byPath;
  };
  /**
   * Paths as logged: the token never reaches a log line, wherever it sits (any segment, part
   * of one, percent-encoded or not), and neither does a segment long enough to be a token.
   */
  const redact = (path: string): string => {
    let decoded = path;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      // not valid percent-encoding: log the raw path, redacted alike
    }
    return decoded
      .split(opts.token)
      .join('<token>')
      .split('/')
      .map((segment) => (segment.length >= MIN_TOKEN_LENGTH && segment !== '<token>' ? '<redacted>' : segment))
      .join('/');
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<void> {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');

    if (path === '/health' || path === '/health/') {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'use GET /health', { Allow: 'GET, HEAD' });
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : 'ok');
      return;
    }

    // The protocol selects the endpoint by the last path segment only.
    const endpoint = path.split('/').filter(Boolean).pop();
    if (endpoint !== 'decode' && (endpoint !== 'encode' || !opts.allowEncode)) {
      throw new HttpError(404, opts.allowEncode ? 'not found: use POST /decode or POST /encode' : 'not found: use POST /decode (this server does not encode)');
    }

    // CORS: the allow-origin header only ever echoes a listed origin, on every answer
    // (401s included, so the UI can show the error rather than a CORS failure).
    res.setHeader('Vary', 'Origin');
    const origin = req.headers.origin;
    const originAllowed = origin !== undefined && origins.has(origin);
    if (originAllowed) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
    }

    if (req.method === 'OPTIONS') {
      // A preflight: browsers send no credentials with it, so it needs no token.
      if (origin !== undefined && !originAllowed) throw new HttpError(403, 'origin not allowed');
      res.setHeader('Allow', ALLOW_METHODS);
      if (originAllowed) {
        res.setHeader('Access-Control-Allow-Methods', ALLOW_METHODS);
        res.setHeader('Access-Control-Allow-Headers', ALLOW_HEADERS);
        res.setHeader('Access-Control-Max-Age', PREFLIGHT_MAX_AGE_SECONDS);
        // Chrome's Private Network Access: a UI on a public host calling this loopback server.
        if (req.headers['access-control-request-private-network'] === 'true') res.setHeader('Access-Control-Allow-Private-Network', 'true');
      }
      res.writeHead(204);
      res.end();
      return;
    }
    if (req.method !== 'POST') throw new HttpError(405, `use POST /${endpoint}`, { Allow: ALLOW_METHODS });
    // A browser page from another origin: refuse outright (defence in depth; it also lacks the token).
    if (origin !== undefined && !originAllowed) throw new HttpError(403, 'origin not allowed');
    if (!authorized(req.headers.authorization, path)) {
      throw new HttpError(401, 'missing or invalid bearer token', {
        'WWW-Authenticate': req.headers.authorization ? 'Bearer error="invalid_token"' : 'Bearer',
      });
    }

    const raw = await readBody(req);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      // JSON.parse's own message quotes the input, so it is not passed on.
      throw new HttpError(400, 'request body is not valid JSON; expected {"payloads": [{"metadata": {...}, "data": "<base64>"}]}');
    }
    const payloads = payloadsFromJson(body);

    const out: Payload[] = [];
    for (let i = 0; i < payloads.length; i++) {
      let result: Payload[];
      try {
        // One at a time, so a failure names the payload; a codec maps payloads one to one.
        result = endpoint === 'decode' ? await codec.decode([payloads[i]]) : await codec.encode([payloads[i]]);
      } catch {
        // The codec's own message is not passed on: it is not ours to vouch for.
        throw new HttpError(
          400,
          endpoint === 'decode'
            ? `payloads[${i}] cannot be decoded: its encryption key is not in this server's keyring, or the payload is malformed, corrupted or was tampered with`
            : `payloads[${i}] cannot be encoded`,
        );
      }
      if (result.length !== 1) throw new Error(`codec returned ${result.length} payloads for 1`);
      out.push(result[0]);
    }
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify({ payloads: out.map(payloadToJson) }));
  }

  const server = http.createServer((req, res) => {
    const started = process.hrtime.bigint();
    const path = pathOf(req.url);
    res.on('close', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const status = res.writableFinished ? String(res.statusCode) : `${res.headersSent ? res.statusCode : '-'}(aborted)`;
      try {
        log(`${loggable(req.method ?? '-', 16)} ${loggable(redact(path), 200)} ${status} ${ms.toFixed(1)}ms`);
      } catch {
        // a failing logger must not take the server down
      }
    });
    handle(req, res, path).catch((err: unknown) => {
      const httpError =
        err instanceof HttpError ? err : new HttpError(500, 'internal error in the codec server');
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
    server.listen(opts.port, host, () => {
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
