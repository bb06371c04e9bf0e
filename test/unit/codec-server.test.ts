// The codec server over real HTTP on 127.0.0.1 (port 0), with the real EncryptionCodec and
// a keyring made in-test from random bytes.
import http from 'node:http';
import { defaultPayloadConverter, METADATA_ENCODING_KEY, type Payload } from '@temporalio/common';
import { ENCRYPTED_ENCODING, EncryptionCodec, METADATA_KEY_ID } from '../../lib/pii/codec';
import { MAX_BODY_BYTES, newCodecToken, startCodecServer, type RunningCodecServer } from '../../lib/pii/codec-server';
import { testCodecKeys } from './helpers';

const IP = '203.0.113.9';
const UI_ORIGIN = 'http://localhost:8233';
const OTHER_ORIGIN = 'https://evil.example';

const codec = new EncryptionCodec(testCodecKeys(['k1']));

/** The proto3 JSON form of a Payload, as the Web UI and CLI send it: metadata values and data in base64. */
interface JsonPayload {
  metadata: Record<string, string>;
  data: string;
  [field: string]: unknown;
}
const b64 = (b: Uint8Array | null | undefined) => Buffer.from(b ?? []).toString('base64');
const toJson = (p: Payload): JsonPayload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, b64(v)])),
  data: b64(p.data),
});
const fromJson = (j: JsonPayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(j.metadata ?? {}).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))])),
  data: new Uint8Array(Buffer.from(j.data ?? '', 'base64')),
});
const text = (b64value: string | undefined) => Buffer.from(b64value ?? '', 'base64').toString('utf8');

/** A payload encrypted by the codec, the way the worker's data converter makes one. */
async function encryptedPayload(value: unknown = { ip: IP }): Promise<JsonPayload> {
  const [encoded] = await codec.encode([defaultPayloadConverter.toPayload(value)]);
  return toJson(encoded);
}

let server: RunningCodecServer;
let token: string;
const logLines: string[] = [];

beforeAll(async () => {
  token = newCodecToken();
  // /encode is off by default; these tests exercise it too.
  server = await startCodecServer({
    codec,
    token,
    allowedOrigins: [UI_ORIGIN],
    port: 0,
    log: (line) => logLines.push(line),
    allowEncode: true,
  });
});
afterAll(async () => {
  await server.close();
});

interface PostOptions {
  auth?: string | null; // the whole Authorization header; default: our bearer token
  origin?: string;
  headers?: Record<string, string>;
}
function post(path: string, body: unknown, opts: PostOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json', ...opts.headers };
  const auth = opts.auth === undefined ? `Bearer ${token}` : opts.auth;
  if (auth !== null) headers.Authorization = auth;
  if (opts.origin) headers.Origin = opts.origin;
  return fetch(`${server.url}${path}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
}
const decode = (payloads: unknown[], opts?: PostOptions) => post('/decode', { payloads }, opts);

describe('codec server: decoding', () => {
  it('decodes an encrypted payload back to the original JSON payload', async () => {
    const encrypted = await encryptedPayload();
    expect(text(encrypted.metadata[METADATA_ENCODING_KEY])).toBe(ENCRYPTED_ENCODING);
    expect(text(encrypted.data)).not.toContain(IP); // the test input really is encrypted

    const res = await decode([encrypted], { headers: { 'X-Namespace': 'default' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as { payloads: JsonPayload[] };
    expect(body.payloads).toHaveLength(1);
    const [decoded] = body.payloads;
    expect(Object.keys(decoded).sort()).toEqual(['data', 'metadata']);
    expect(text(decoded.metadata[METADATA_ENCODING_KEY])).toBe('json/plain');
    expect(JSON.parse(text(decoded.data))).toEqual({ ip: IP });
    expect(defaultPayloadConverter.fromPayload(fromJson(decoded))).toEqual({ ip: IP });
  });

  it('decodes several payloads in order and passes unencrypted ones through', async () => {
    const plain = toJson(defaultPayloadConverter.toPayload('not secret'));
    const res = await decode([
      await encryptedPayload({ n: 1 }),
      plain,
      await encryptedPayload([2]),
      await encryptedPayload(null),
    ]);
    expect(res.status).toBe(200);
    const { payloads } = (await res.json()) as { payloads: JsonPayload[] };
    expect(payloads.map((p) => defaultPayloadConverter.fromPayload(fromJson(p)))).toEqual([{ n: 1 }, 'not secret', [2], null]);
    expect(payloads[1]).toEqual(plain);
  });

  it('answers an empty list with an empty list', async () => {
    const res = await decode([]);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ payloads: [] });
  });

  it('accepts URL-safe and unpadded base64, as proto3 JSON allows', async () => {
    const encrypted = await encryptedPayload();
    const urlSafe = (s: string) => s.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    const variant: JsonPayload = {
      metadata: Object.fromEntries(Object.entries(encrypted.metadata).map(([k, v]) => [k, urlSafe(v)])),
      data: urlSafe(encrypted.data),
    };
    const res = await decode([variant]);
    expect(res.status).toBe(200);
    const { payloads } = (await res.json()) as { payloads: JsonPayload[] };
    expect(JSON.parse(text(payloads[0].data))).toEqual({ ip: IP });
  });

  it('matches the endpoint by the last path segment (per-namespace URLs, a trailing slash in the configured endpoint)', async () => {
    for (const path of ['/default/decode', '//decode', '/codec/ns-1/decode?x=1']) {
      const res = await post(path, { payloads: [await encryptedPayload()] });
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
      const { payloads } = (await res.json()) as { payloads: JsonPayload[] };
      expect(JSON.parse(text(payloads[0].data))).toEqual({ ip: IP });
    }
  });
});

describe('codec server: encoding', () => {
  it('encodes over HTTP with the real codec, and decodes the result back (round trip)', async () => {
    const original = toJson(defaultPayloadConverter.toPayload({ ip: IP, device: 'd-1' }));
    const encodedRes = await post('/encode', { payloads: [original] });
    expect(encodedRes.status).toBe(200);
    const encoded = ((await encodedRes.json()) as { payloads: JsonPayload[] }).payloads;
    expect(encoded).toHaveLength(1);
    expect(text(encoded[0].metadata[METADATA_ENCODING_KEY])).toBe(ENCRYPTED_ENCODING);
    expect(text(encoded[0].metadata[METADATA_KEY_ID])).toBe('k1');
    expect(Buffer.from(encoded[0].data, 'base64').includes(Buffer.from(IP))).toBe(false);
    // What the server encoded, the codec itself decodes: it used our keys, not a pass-through.
    const [local] = await codec.decode([fromJson(encoded[0])]);
    expect(defaultPayloadConverter.fromPayload(local)).toEqual({ ip: IP, device: 'd-1' });

    const decodedRes = await post('/decode', { payloads: encoded });
    expect(decodedRes.status).toBe(200);
    const decoded = ((await decodedRes.json()) as { payloads: JsonPayload[] }).payloads;
    expect(decoded).toEqual([original]);
  });

  it('keeps odd metadata keys (even "__proto__") and external payload details through a round trip', async () => {
    const original = {
      metadata: JSON.parse('{"__proto__": "YQ==", "encoding": "anNvbi9wbGFpbg=="}'),
      data: Buffer.from('"x"').toString('base64'),
      externalPayloads: [{ sizeBytes: '9007199254740993' }],
    };
    const encodedRes = await post('/encode', JSON.stringify({ payloads: [original] }));
    expect(encodedRes.status).toBe(200);
    const encoded = ((await encodedRes.json()) as { payloads: JsonPayload[] }).payloads;
    expect(encoded[0].externalPayloads).toBeUndefined(); // inside the ciphertext now
    const decodedRes = await post('/decode', { payloads: encoded });
    expect(decodedRes.status).toBe(200);
    const decodedText = await decodedRes.text();
    expect(JSON.parse(decodedText)).toEqual({ payloads: [original] });
    expect(decodedText).toContain('"__proto__":"YQ=="');
  });
});

describe('codec server: authorization', () => {
  let encrypted: JsonPayload;
  beforeAll(async () => {
    encrypted = await encryptedPayload();
  });

  async function expectUnauthorized(res: Response) {
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    const body = await res.text();
    expect(JSON.parse(body)).toEqual({ error: expect.any(String) });
    expect(body).not.toContain(IP);
    expect(body).not.toContain(encrypted.data);
  }

  it('refuses a request without a token', async () => {
    await expectUnauthorized(await decode([encrypted], { auth: null }));
    await expectUnauthorized(
      await post('/encode', { payloads: [toJson(defaultPayloadConverter.toPayload(IP))] }, { auth: null }),
    );
  });

  it('refuses a wrong token', async () => {
    await expectUnauthorized(await decode([encrypted], { auth: `Bearer ${newCodecToken()}` }));
  });

  it('refuses a token that differs in one character', async () => {
    const last = token[token.length - 1];
    const nearly = token.slice(0, -1) + (last === 'A' ? 'B' : 'A');
    expect(nearly).not.toBe(token);
    expect(nearly).toHaveLength(token.length);
    await expectUnauthorized(await decode([encrypted], { auth: `Bearer ${nearly}` }));
  });

  it('refuses the token under another scheme, a prefix of it, or the token with extra characters', async () => {
    await expectUnauthorized(await decode([encrypted], { auth: `Basic ${token}` }));
    await expectUnauthorized(await decode([encrypted], { auth: token }));
    await expectUnauthorized(await decode([encrypted], { auth: `Bearer ${token.slice(0, -1)}` }));
    await expectUnauthorized(await decode([encrypted], { auth: `Bearer ${token}x` }));
    await expectUnauthorized(await decode([encrypted], { auth: 'Bearer ' }));
  });

  it('accepts the scheme in any case (RFC 7235), as the CLI’s --codec-auth may send it', async () => {
    const res = await decode([encrypted], { auth: `bearer ${token}` });
    expect(res.status).toBe(200);
  });

  it('checks the token before reading the body', async () => {
    await expectUnauthorized(await post('/decode', 'not json at all', { auth: null }));
  });
});

describe('codec server: CORS', () => {
  const preflight = (origin: string, path = '/decode', extra: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, {
      method: 'OPTIONS',
      headers: {
        Origin: origin,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization, content-type, x-namespace',
        ...extra,
      },
    });

  it('answers a preflight from an allowed origin, without a token', async () => {
    const res = await preflight(UI_ORIGIN);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    expect(res.headers.get('access-control-allow-methods')).toBe('POST, OPTIONS');
    expect(res.headers.get('access-control-allow-headers')).toBe('Content-Type, Authorization, X-Namespace');
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    expect(res.headers.get('vary')).toMatch(/\bOrigin\b/);
    expect(res.headers.get('access-control-allow-private-network')).toBeNull();
    const encodePreflight = await preflight(UI_ORIGIN, '/default/encode', { 'Access-Control-Request-Private-Network': 'true' });
    expect(encodePreflight.status).toBe(204);
    expect(encodePreflight.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    expect(encodePreflight.headers.get('access-control-allow-private-network')).toBe('true');
  });

  it('gives no allow-origin header to a preflight from another origin (never "*")', async () => {
    for (const origin of [OTHER_ORIGIN, 'http://localhost:8234', 'http://127.0.0.1:8233', 'null']) {
      const res = await preflight(origin, '/decode', { 'Access-Control-Request-Private-Network': 'true' });
      expect({ origin, status: res.status }).toEqual({ origin, status: 403 });
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(res.headers.get('access-control-allow-methods')).toBeNull();
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
      expect(res.headers.get('access-control-allow-private-network')).toBeNull();
    }
  });

  it('sets the allow-origin header on real answers to an allowed origin, 401s included', async () => {
    const ok = await decode([await encryptedPayload()], { origin: UI_ORIGIN });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    expect(ok.headers.get('access-control-allow-credentials')).toBe('true');

    const unauthorized = await decode([await encryptedPayload()], { origin: UI_ORIGIN, auth: null });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    expect(unauthorized.headers.get('access-control-allow-credentials')).toBe('true');
    expect(unauthorized.headers.get('vary')).toMatch(/\bOrigin\b/);

    const bad = await post('/decode', '{', { origin: UI_ORIGIN });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
  });

  it('refuses a request from a page of another origin even with the token, and gives it no allow-origin header', async () => {
    const res = await decode([await encryptedPayload()], { origin: OTHER_ORIGIN });
    expect(res.status).toBe(403);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(await res.text()).not.toContain(IP);
  });
});

describe('codec server: bad requests', () => {
  async function expectError(res: Response, status: number, message?: RegExp): Promise<string> {
    expect(res.status).toBe(status);
    const body = (await res.json()) as { error: string };
    expect(typeof body.error).toBe('string');
    if (message) expect(body.error).toMatch(message);
    return body.error;
  }

  it('refuses a body over 4 MiB with 413, whether or not it declares its length', async () => {
    const big = JSON.stringify({ payloads: [{ metadata: {}, data: 'A'.repeat(MAX_BODY_BYTES) }] });
    expect(Buffer.byteLength(big)).toBeGreaterThan(MAX_BODY_BYTES);
    await expectError(await post('/decode', big), 413, /4 MiB/);

    const chunk = new TextEncoder().encode(' '.repeat(1024 * 1024));
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 5; i++) controller.enqueue(chunk);
        controller.close();
      },
    });
    const res = await fetch(`${server.url}/decode`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: stream,
      duplex: 'half',
    });
    await expectError(res, 413);

    // Just under the limit is read (and then refused as JSON, not as size).
    await expectError(await post('/decode', 'x'.repeat(MAX_BODY_BYTES)), 400, /not valid JSON/);
    // And the server still serves.
    expect((await decode([await encryptedPayload()])).status).toBe(200);
  });

  it('refuses a body that declares more than 4 MiB at once, without waiting for it', async () => {
    // Sends the headers and 10 bytes of a declared 4 MiB + 1 body, and never the rest.
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${server.url}/decode`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${token}`,
          'Content-Type': 'application/json',
          'Content-Length': String(MAX_BODY_BYTES + 1),
        },
      });
      const timer = setTimeout(() => {
        req.destroy();
        reject(new Error('no answer within 3 s: the server waited for the declared body'));
      }, 3000);
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => {
          clearTimeout(timer);
          req.destroy();
          resolve({ status: res.statusCode ?? 0, body: text });
        });
      });
      req.on('error', () => {}); // the server may close the connection after answering
      req.write('{"payloads"');
    });
    expect(status).toBe(413);
    expect(JSON.parse(body).error).toMatch(/4 MiB/);
  });

  it('refuses garbage JSON with 400, without quoting it', async () => {
    // JSON.parse's own message quotes the input, so passing it on would leak payload content.
    expect(() => JSON.parse(`not json ${IP}`)).toThrow(IP);
    for (const garbage of [`not json ${IP}`, `{"payloads": [${IP}`]) {
      const message = await expectError(await post('/decode', garbage), 400, /not valid JSON/);
      expect(message).not.toContain(IP);
    }
    await expectError(await post('/encode', ''), 400, /not valid JSON/);
  });

  it('refuses a body of the wrong shape with 400 and says what is wrong', async () => {
    const encrypted = await encryptedPayload();
    const cases: [unknown, RegExp][] = [
      [[encrypted], /JSON object/],
      ['"payloads"', /JSON object/],
      [{ payloads: encrypted }, /"payloads" must be an array/],
      [{ payload: [encrypted] }, /unknown field "payload"/],
      [{ payloads: [42] }, /payloads\[0\] must be an object/],
      [{ payloads: [encrypted, { data: 42 }] }, /payloads\[1\]\.data must be a base64 string/],
      [{ payloads: [{ data: 'not base64!' }] }, /payloads\[0\]\.data is not valid base64/],
      [{ payloads: [{ data: 'QUJD=' }] }, /not valid base64/],
      [{ payloads: [{ metadata: 'x', data: '' }] }, /metadata must be an object/],
      [{ payloads: [{ metadata: { encoding: 7 }, data: '' }] }, /metadata value must be a base64 string/],
      [{ payloads: [{ ...encrypted, extra: 1 }] }, /payloads\[0\] has an unknown field "extra"/],
      [{ payloads: [{ ...encrypted, externalPayloads: [{ sizeBytes: 'big' }] }] }, /64-bit integer/],
    ];
    for (const [body, message] of cases) {
      const res = await post('/decode', body);
      expect({ body, status: res.status }).toEqual({ body, status: 400 });
      expect(((await res.json()) as { error: string }).error).toMatch(message);
    }
  });

  it('refuses a tampered payload with 400 naming it generically, and keeps serving', async () => {
    const encrypted = await encryptedPayload();
    const data = Buffer.from(encrypted.data, 'base64');
    data[data.length - 1] ^= 0x01;
    const tampered = { ...encrypted, data: data.toString('base64') };
    const res = await decode([await encryptedPayload(), tampered]);
    const message = await expectError(res, 400, /payloads\[1\] cannot be decoded/);
    expect(message).not.toContain(IP);
    expect(message).not.toContain(tampered.data);

    const after = await decode([encrypted]);
    expect(after.status).toBe(200);
    const { payloads } = (await after.json()) as { payloads: JsonPayload[] };
    expect(JSON.parse(text(payloads[0].data))).toEqual({ ip: IP });
  });

  it('refuses a payload under a key this keyring does not hold with 400', async () => {
    const otherCodec = new EncryptionCodec(testCodecKeys(['k-elsewhere']));
    const [foreign] = await otherCodec.encode([defaultPayloadConverter.toPayload({ ip: IP })]);
    await expectError(
      await decode([toJson(foreign)]),
      400,
      /payloads\[0\] cannot be decoded: its encryption key is not in this server's keyring/,
    );
  });

  it('answers 404 for other paths, 405 for other methods', async () => {
    await expectError(await post('/', { payloads: [] }), 404);
    await expectError(await post('/decoder', { payloads: [] }), 404);
    await expectError(await post('/decode/x', { payloads: [] }), 404);
    const get = await fetch(`${server.url}/decode`, { headers: { Authorization: `Bearer ${token}` } });
    expect(get.headers.get('allow')).toBe('POST, OPTIONS');
    await expectError(get, 405);
    await expectError(
      await fetch(`${server.url}/encode`, { method: 'PUT', headers: { Authorization: `Bearer ${token}` }, body: '{}' }),
      405,
    );
    await expectError(await fetch(`${server.url}/health`, { method: 'POST', body: '' }), 405);
  });

  it('answers GET /health with 200 ok, without a token', async () => {
    const res = await fetch(`${server.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
  });
});

describe('codec server: logging', () => {
  it('logs one line per request (method path status duration) and never payload data or the token', async () => {
    const secretValue = { ip: IP, device: 'device-7f3a9c' };
    const encrypted = await encryptedPayload(secretValue);
    const plainJson = toJson(defaultPayloadConverter.toPayload(secretValue));
    const before = logLines.length;
    const decoded = await decode([encrypted], { origin: UI_ORIGIN });
    const decodedBody = await decoded.text();
    expect(decodedBody).toContain(plainJson.data); // the answer does carry the data, so the search below could find it
    await (await post('/encode', { payloads: [plainJson] })).text();
    const tampered = { ...encrypted, data: Buffer.from(encrypted.data, 'base64').reverse().toString('base64') };
    await (await decode([tampered])).text();
    await (await decode([encrypted], { auth: null })).text();
    await (await post('/decode', `{"payloads": "${IP}"`)).text();
    await (await post(`/decode?ip=${IP}`, { payloads: [] })).text();
    const lines = logLines.slice(before);

    expect(lines).toHaveLength(6);
    expect(lines[0]).toMatch(/^POST \/decode 200 \d+\.\dms$/);
    expect(lines.map((l) => l.split(' ').slice(0, 3).join(' '))).toEqual([
      'POST /decode 200',
      'POST /encode 200',
      'POST /decode 400',
      'POST /decode 401',
      'POST /decode 400',
      'POST /decode 200',
    ]);
    const all = lines.join('\n');
    for (const forbidden of [
      IP,
      'device-7f3a9c',
      plainJson.data,
      encrypted.data,
      tampered.data,
      token,
      Buffer.from(IP).toString('base64'),
    ]) {
      expect(all).not.toContain(forbidden);
    }
  });

  it('never logs the token, wherever in the path it is, and serves no /encode unless asked', async () => {
    const lines: string[] = [];
    const quiet = await startCodecServer({ codec, token, allowedOrigins: [UI_ORIGIN], port: 0, log: (line) => lines.push(line) });
    try {
      const auth = { Authorization: `Bearer ${token}` };
      const body = JSON.stringify({ payloads: [await encryptedPayload()] });
      const paths = [
        `/${token}/decode`,
        `/${token}`,
        `/${token}/x/decode`,
        `/a/${token}/b/decode`,
        `/x${token}y/decode`,
        `/${encodeURIComponent(token)}/encode`,
        `/decode/${token}`,
        `/${token.slice(0, 40)}/decode`,
      ];
      for (const path of paths) await (await fetch(`${quiet.url}${path}`, { method: 'POST', headers: auth, body })).text();
      expect(lines).toHaveLength(paths.length);
      const all = lines.join('\n');
      expect(all).toContain('/decode'); // the lines are there and readable
      expect(all).not.toContain(token);
      expect(all).not.toContain(token.slice(0, 40));
      // The capability-URL form still works (the control: the requests above reached the server).
      expect(lines[0]).toMatch(/^POST \/<token>\/decode 200/);
      const encode = await fetch(`${quiet.url}/encode`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ payloads: [toJson(defaultPayloadConverter.toPayload(IP))] }),
      });
      expect(encode.status).toBe(404);
      expect(await encode.text()).toMatch(/does not encode/);
    } finally {
      await quiet.close();
    }
  });

  it('keeps serving when the log function throws', async () => {
    const noisy = await startCodecServer({
      codec,
      token,
      allowedOrigins: [],
      port: 0,
      log: () => {
        throw new Error('log down');
      },
    });
    try {
      expect((await fetch(`${noisy.url}/health`)).status).toBe(200);
      expect((await fetch(`${noisy.url}/health`)).status).toBe(200);
    } finally {
      await noisy.close();
    }
  });
});

describe('codec server: options and lifecycle', () => {
  const base = () => ({ codec, token: newCodecToken(), allowedOrigins: [UI_ORIGIN], port: 0 });

  it('newCodecToken makes 32 random bytes in base64url', () => {
    const a = newCodecToken();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(a, 'base64url')).toHaveLength(32);
    expect(newCodecToken()).not.toBe(a);
  });

  it('refuses to start with a short or missing token', async () => {
    await expect(startCodecServer({ ...base(), token: 'x'.repeat(31) })).rejects.toThrow(/token must be at least 32 characters/);
    await expect(startCodecServer({ ...base(), token: '' })).rejects.toThrow(/token must be at least 32 characters/);
    await expect(startCodecServer({ ...base(), token: undefined as unknown as string })).rejects.toThrow(/token/);
    await expect(startCodecServer({ ...base(), token: `${'x'.repeat(32)} y` })).rejects.toThrow(/without spaces/);
  });

  it('refuses "*", "null", and origins with a path or another scheme', async () => {
    for (const origin of [
      '*',
      'null',
      'http://localhost:8233/ui',
      'localhost:8233',
      'ftp://localhost',
      'http://localhost:8233?x',
    ]) {
      await expect(startCodecServer({ ...base(), allowedOrigins: [origin] })).rejects.toThrow(/allowedOrigins|allowed origin/);
    }
  });

  it('refuses a bad port or a missing codec', async () => {
    await expect(startCodecServer({ ...base(), port: 70000 })).rejects.toThrow(/port/);
    await expect(startCodecServer({ ...base(), port: 1.5 })).rejects.toThrow(/port/);
    await expect(startCodecServer({ ...base(), codec: {} as EncryptionCodec })).rejects.toThrow(/codec/);
  });

  it('normalises configured origins to what browsers send', async () => {
    const s = await startCodecServer({ ...base(), allowedOrigins: ['HTTP://LocalHost:8233/', 'https://ui.example.com:443'] });
    try {
      for (const origin of ['http://localhost:8233', 'https://ui.example.com']) {
        const res = await fetch(`${s.url}/decode`, {
          method: 'OPTIONS',
          headers: { Origin: origin, 'Access-Control-Request-Method': 'POST' },
        });
        expect(res.headers.get('access-control-allow-origin')).toBe(origin);
      }
    } finally {
      await s.close();
    }
  });

  it('listens on 127.0.0.1 by default, and close() stops it (twice is fine)', async () => {
    const s = await startCodecServer(base());
    expect(s.url).toBe(`http://127.0.0.1:${s.port}`);
    expect(s.port).toBeGreaterThan(0);
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
    // A request is still sending its body when closing: close() must not wait for it.
    const pending = http.request(`${s.url}/decode`, { method: 'POST', headers: { 'Content-Length': '100' } });
    pending.on('error', () => {});
    pending.write('{"pay');
    await new Promise((r) => setTimeout(r, 100));
    const outcome = await Promise.race([
      s.close().then(() => 'closed'),
      new Promise((r) => setTimeout(() => r('still waiting after 3 s'), 3000)),
    ]);
    expect(outcome).toBe('closed');
    await s.close();
    await expect(fetch(`${s.url}/health`)).rejects.toThrow();
  });

  it('rejects when the port is taken', async () => {
    await expect(startCodecServer({ ...base(), port: server.port })).rejects.toThrow(/EADDRINUSE/);
  });
});

describe('capability URL for the Web UI (which cannot send a static bearer token)', () => {
  it('accepts the token as the path segment before /decode, keeps it out of the log, and refuses a wrong one', async () => {
    const lines: string[] = [];
    const token = newCodecToken();
    const server = await startCodecServer({
      codec,
      token,
      allowedOrigins: ['http://localhost:8233'],
      port: 0,
      log: (l) => lines.push(l),
    });
    try {
      const [encoded] = await codec.encode([defaultPayloadConverter.toPayload({ ip: '203.0.113.9' })]);
      const body = JSON.stringify({ payloads: [toJson(encoded)] });
      const ok = await fetch(`${server.url}/${token}/decode`, {
        method: 'POST',
        body,
        headers: { 'Content-Type': 'application/json' },
      });
      expect(ok.status).toBe(200);
      const wrong = await fetch(`${server.url}/${newCodecToken()}/decode`, {
        method: 'POST',
        body,
        headers: { 'Content-Type': 'application/json' },
      });
      expect(wrong.status).toBe(401);
      expect(lines.join('\n')).not.toContain(token);
      expect(lines.some((l) => l.includes('/<token>/decode 200'))).toBe(true);
    } finally {
      await server.close();
    }
  });
});
