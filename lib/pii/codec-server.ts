// Temporal codec server: lets the Temporal Web UI and CLI show the decoded payloads of the
// ingest workflows (which lib/pii/codec.ts encrypts), but only to callers holding a bearer
// token. This file is the codec and its guard: the options, the token (header or path) and
// its redaction, CORS, and the endpoints; the wire form of payloads is
// lib/pii/codec-payload-json.ts, the HTTP plumbing lib/platform/http.ts.
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
import type http from 'node:http';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { HttpError, readBody, serve, type RunningServer } from '../platform/http';
import { payloadsFromJson, payloadToJson } from './codec-payload-json';

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

export type RunningCodecServer = RunningServer;

export const MIN_TOKEN_LENGTH = 32;
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

const ALLOW_METHODS = 'POST, OPTIONS';
const ALLOW_HEADERS = 'Content-Type, Authorization, X-Namespace';
const PREFLIGHT_MAX_AGE_SECONDS = '600';

/** A new token: 32 random bytes, base64url (43 characters). */
export function newCodecToken(): string {
  return crypto.randomBytes(32).toString('base64url');
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
  if (!Array.isArray(opts.allowedOrigins))
    throw new Error('startCodecServer: allowedOrigins must be an array of origins such as http://localhost:8233');
  const origins = new Set<string>();
  for (const origin of opts.allowedOrigins) {
    if (origin === '*' || origin === 'null') {
      throw new Error(
        `startCodecServer: allowedOrigins cannot contain ${JSON.stringify(origin)}: list the Web UI's origins, e.g. http://localhost:8233`,
      );
    }
    let parsed: URL;
    try {
      parsed = new URL(String(origin));
    } catch {
      throw new Error(
        `startCodecServer: allowed origin ${JSON.stringify(origin)} is not a URL; expected scheme://host[:port], e.g. http://localhost:8233`,
      );
    }
    const justOrigin = parsed.pathname === '/' && !parsed.search && !parsed.hash && !parsed.username && !parsed.password;
    if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || !justOrigin || /[?#]$/.test(String(origin))) {
      throw new Error(
        `startCodecServer: allowed origin ${JSON.stringify(origin)} must be just scheme://host[:port] (http or https, no path), e.g. http://localhost:8233`,
      );
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

export async function startCodecServer(opts: CodecServerOptions): Promise<RunningCodecServer> {
  const { origins, host } = validateOptions(opts);
  const { codec } = opts;
  const tokenHash = crypto.createHash('sha256').update(opts.token, 'utf8').digest();
  const log = opts.log ?? (() => {});

  // Hashing both sides gives equal-length buffers, so the comparison time says nothing
  // about the token's length or how much of it matched.
  const isToken = (candidate: string | null): boolean =>
    crypto.timingSafeEqual(
      crypto
        .createHash('sha256')
        .update(candidate ?? '', 'utf8')
        .digest(),
      tokenHash,
    ) && candidate !== null;
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
      throw new HttpError(
        404,
        opts.allowEncode
          ? 'not found: use POST /decode or POST /encode'
          : 'not found: use POST /decode (this server does not encode)',
      );
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
        if (req.headers['access-control-request-private-network'] === 'true')
          res.setHeader('Access-Control-Allow-Private-Network', 'true');
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

    const raw = await readBody(req, MAX_BODY_BYTES);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      // JSON.parse's own message quotes the input, so it is not passed on.
      throw new HttpError(
        400,
        'request body is not valid JSON; expected {"payloads": [{"metadata": {...}, "data": "<base64>"}]}',
      );
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

  return serve(handle, { port: opts.port, host, log, loggablePath: redact, name: 'the codec server' });
}
