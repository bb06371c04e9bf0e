// The doors users take, as they take them: `npx ts-node client.ts …` in a subprocess,
// configured only through the environment variables the README documents.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client as PgClient } from 'pg';
import { generateBodies } from '../../lib/ingest/load';
import { optionsFromConfig, runIngest } from '../../cli/ingest-run';
import { createSchedule } from '../../cli/schedule';
import { SCHEDULE_ID } from '../../lib/contract/names';
import { getApproximateCounts, sendMessages } from '../../lib/ingest/sqs';
import { dumpTables, findPlaintext, runClient, startPipeline, VALID_SAMPLE as SAMPLE, type Pipeline } from './helpers';

let p: Pipeline;
let pg: PgClient;

const client = (args: string[], env: Record<string, string> = {}) => runClient(p, args, env);
const root = path.join(__dirname, '..', '..');

beforeAll(async () => {
  p = await startPipeline('cli');
  pg = new PgClient({ connectionString: p.config.databaseUrl });
  await pg.connect();
});

afterAll(async () => {
  await pg?.end();
  await p?.close();
});

test('load --file and ingest --json account for every line: one row or one quarantine entry each, with reasons', async () => {
  const good = SAMPLE.slice(0, 20).map((e) => JSON.stringify(e));
  const lines = [
    ...good,
    good[0], // the same content again: a new message, a duplicate login
    '{"user_id": "broken',
    JSON.stringify({ ...SAMPLE[3], ip: '300.1.2.3' }),
    JSON.stringify({ ...SAMPLE[4], device_id: 42 }),
    JSON.stringify({ ...SAMPLE[5], extra: 'field' }),
    JSON.stringify({ ...SAMPLE[6], user_id: 'x'.repeat(500) }),
    JSON.stringify({ ...SAMPLE[7], pad: 'y'.repeat(10_000) }), // over the 8 KiB body limit
    '["an", "array"]',
    'null',
    JSON.stringify({ ...SAMPLE[8], user_id: 'nul\u0000byte' }),
  ];
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lines-')), 'messages.jsonl');
  fs.writeFileSync(file, lines.join('\n') + '\n\n');

  const loaded = await client(['load', '--file', file, '--json']);
  expect(JSON.parse(loaded.stdout)).toMatchObject({
    sent: lines.length,
    queueUrl: p.config.sqs.queueUrl,
    seconds: expect.any(Number),
  });

  const { stdout } = await client(['ingest', '--json']);
  const summary = JSON.parse(stdout);
  expect(summary).toMatchObject({
    workflowId: p.config.ingest.workflowId,
    received: lines.length,
    persisted: 21,
    quarantined: lines.length - 21,
    alreadySeen: 0,
    stopReason: 'queue_empty',
  });
  // The repeated login is stored as a row of its own with the same fingerprint (the truth, in
  // the table); the summary's count may miss it when the two copies were committed at the same
  // moment by two drain threads (README: each chunk's insert counts what it saw).
  const repeated = await pg.query<{ n: number }>(
    'SELECT (count(*) - count(DISTINCT login_fingerprint))::int AS n FROM user_logins',
  );
  expect(repeated.rows[0].n).toBe(1);
  expect(summary.duplicateLogins).toBeLessThanOrEqual(1);
  expect(summary.quarantinedByReason).toMatchObject({
    invalid_json: 1,
    invalid_ip: 1,
    'wrong_type:device_id': 1,
    unknown_field: 1,
    'too_long:user_id': 1,
    body_too_large: 1,
    not_an_object: 2,
    'invalid_characters:user_id': 1,
  });

  const ledger = await pg.query(`SELECT count(*)::int AS n, count(DISTINCT message_id)::int AS d FROM ingested_messages`);
  expect(ledger.rows[0]).toEqual({ n: lines.length, d: lines.length });
  const overlap = await pg.query(`SELECT count(*)::int AS n FROM user_logins u JOIN quarantine q USING (message_id)`);
  expect(overlap.rows[0].n).toBe(0);
  const q = await pg.query(`SELECT reasons, body_bytes, body_truncated FROM quarantine`);
  expect(q.rows.every((r) => r.reasons.length > 0)).toBe(true);
  expect(q.rows.filter((r) => r.body_truncated)).toEqual([
    { reasons: ['body_too_large'], body_bytes: lines[26].length, body_truncated: true },
  ]);
  expect(await getApproximateCounts(p.sqs, p.config.sqs.queueUrl)).toEqual({ visible: 0, inFlight: 0 });
  const pii = SAMPLE.slice(0, 9).flatMap((e) => [e.ip as string, e.device_id as string]);
  expect(findPlaintext(await dumpTables(p.config.databaseUrl), pii)).toEqual([]);
});

test('a second ingest while one runs attaches to it instead of starting another', async () => {
  await sendMessages(p.sqs, p.config.sqs.queueUrl, generateBodies(1500, { seed: 7 }));
  const options = { ...optionsFromConfig(p.config.ingest), batchSize: 50, concurrency: 1 };
  const first = runIngest(p.client, p.config, options);
  await new Promise((r) => setTimeout(r, 1000));
  const second = await runIngest(p.client, p.config, options);
  const firstResult = await first;
  expect(second.attached).toBe(true);
  expect(firstResult.attached).toBe(false);
  expect(second.runId).toBe(firstResult.runId);
  expect(second.summary).toEqual(firstResult.summary);
  expect(firstResult.summary.received).toBe(1500);
});

test('exit codes: wrong usage is 64, and --help says what each code means', async () => {
  const usage = await client(['ingest', '--batch-size', 'many']).catch((e) => e);
  expect(usage.code).toBe(64);
  expect(usage.stderr).toContain("option '--batch-size <n>' argument 'many' is invalid");
  const help = await client(['--help']);
  expect(help.stdout).toMatch(
    /Exit codes: 0 done .* 1 failure .*\n2 refused .* 3 ingest stopped with messages_unavailable · 64 wrong usage/,
  );
});

test('bad configuration is refused with the variable named, and nothing runs', async () => {
  const bad = await client(['ingest'], { INGEST_BATCH_SIZE: 'lots' }).catch((e) => e);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toContain('INGEST_BATCH_SIZE must be a whole number (got "lots")');

  // The client needs the codec key (never the PII keys); production never makes one up.
  const prod = await client(['ingest'], { NODE_ENV: 'production', TEMPORAL_CODEC_KEY_FILE: '' }).catch((e) => e);
  expect(prod.code).toBe(1);
  expect(prod.stderr).toMatch(/NODE_ENV=production and no payload codec key is configured: set TEMPORAL_CODEC_KEY_FILE/);

  // A malformed URL never echoes its password, wherever it sits.
  for (const url of ['postgres//app:Sup3rSecretPw@db:5432/x', 'mysql://app:Sup3rSecretPw@db/x', 'Sup3rSecretPw']) {
    const leak = await client(['audit', 'verify'], { DATABASE_URL: url, DATABASE_OWNER_URL: url }).catch((e) => e);
    expect(leak.code).toBe(1);
    expect(leak.stderr).toContain('DATABASE_URL must be a URL');
    expect(leak.stderr + leak.stdout).not.toContain('Sup3rSecretPw');
  }
  const fourEyesOff = await client(['requests'], { NODE_ENV: 'production', PII_RECOVERY_REQUIRE_APPROVAL: 'false' }).catch(
    (e) => e,
  );
  expect(fourEyesOff.code).toBe(1);
  expect(fourEyesOff.stderr).toContain('PII_RECOVERY_REQUIRE_APPROVAL=false is refused with NODE_ENV=production');
});

test('schedule: create, describe, trigger (a scheduled ingest runs), pause, unpause, delete', async () => {
  await createSchedule(p.client, p.config);
  try {
    const described = await client(['schedule', 'describe']);
    expect(described.stdout).toContain(`Schedule ${SCHEDULE_ID}: every 30 min, overlap ${'SKIP'}`);
    expect(JSON.parse((await client(['schedule', 'describe', '--json'])).stdout)).toMatchObject({
      scheduleId: SCHEDULE_ID,
      intervalsSeconds: [1800],
      overlap: 'SKIP',
      paused: false,
      nextActionTimes: expect.arrayContaining([expect.any(String)]),
    });
    const again = await client(['schedule', 'create', '--if-missing']);
    expect(again.stderr).toContain(`Schedule ${SCHEDULE_ID} exists already: left as it is.`);
    await expect(client(['schedule', 'create'])).rejects.toMatchObject({ code: 1 });

    await sendMessages(p.sqs, p.config.sqs.queueUrl, [JSON.stringify({ ...SAMPLE[9], user_id: 'scheduled-user' })]);
    await client(['schedule', 'trigger']);
    const handle = p.client.schedule.getHandle(SCHEDULE_ID);
    let started: string | undefined;
    for (let i = 0; i < 50 && !started; i++) {
      started = (await handle.describe()).info.recentActions[0]?.action.workflow.workflowId;
      if (!started) await new Promise((r) => setTimeout(r, 200));
    }
    expect(started).toBeDefined();
    const result = await p.client.workflow.getHandle(started!).result();
    expect(result).toMatchObject({ skipped: false, summary: { received: 1, persisted: 1 } });
    expect((await pg.query(`SELECT count(*)::int AS n FROM user_logins WHERE user_id = 'scheduled-user'`)).rows[0].n).toBe(1);

    await client(['schedule', 'pause']);
    expect((await handle.describe()).state.paused).toBe(true);
    await client(['schedule', 'unpause']);
    expect((await handle.describe()).state.paused).toBe(false);
  } finally {
    await client(['schedule', 'delete']);
  }
  await expect(p.client.schedule.getHandle(SCHEDULE_ID).describe()).rejects.toThrow();
});

test('recovery from the command line: keygen, recover, a refused self-approval, approve, resume, audit verify, keys rotate and status', async () => {
  await client(['operator', 'keygen', '--name', 'erin', '--roles', 'pii-requester', '--register']);
  const bob = await client(['operator', 'keygen', '--name', 'frank', '--roles', 'pii-approver', '--register']);
  expect(JSON.parse(bob.stdout)).toMatchObject({ name: 'frank', roles: ['pii-approver'] });
  // A second registration of a name is refused before anything is written: no key file, the registry as it was.
  const registered = fs.readFileSync(p.config.recovery.operatorsFile, 'utf8');
  const secondKey = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'operator-key-')), 'erin-again.key');
  const again = await client(['operator', 'keygen', '--name', 'erin', '--register', '--out', secondKey]).catch((e) => e);
  expect(again.stderr).toMatch(/Refusing to register erin: .* already has an operator named "erin".* Nothing was written/);
  expect(fs.existsSync(secondKey)).toBe(false);
  expect(fs.readFileSync(p.config.recovery.operatorsFile, 'utf8')).toBe(registered);
  const [messageId] = await sendMessages(p.sqs, p.config.sqs.queueUrl, [
    JSON.stringify({ ...SAMPLE[0], user_id: 'cli-recovery-user' }),
  ]);
  await runIngest(p.client, p.config, optionsFromConfig(p.config.ingest));
  const rows = [{ message_id: messageId }];
  // An operator's machine holds the operator's key and the codec key, never the PII keys:
  // the key file these commands would need does not exist, and no master key is set.
  const operatorEnv = {
    PII_KEYRING_FILE: path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'no-pii-keys-')), 'keyring.json'),
    PII_MASTER_KEY: '',
  };
  const withoutKeys = (args: string[]) => client(args, operatorEnv);
  // The control: a command that does load the PII keys fails in that environment.
  expect((await withoutKeys(['keys', 'status']).catch((e) => e)).stderr).toMatch(/cannot be read/);
  const started = await withoutKeys([
    'recover',
    '--operator',
    'erin',
    '--reason',
    'Support case: confirm the login IP.',
    '--ticket',
    'SUP-9',
    '--message-id',
    rows[0].message_id,
    '--no-wait',
  ]);
  const requestId = /Request ([0-9a-f-]{36}) started/.exec(started.stderr)![1];

  const listed = (await withoutKeys(['requests'])).stdout;
  expect(listed).toContain(`${requestId}  awaiting_decision`);
  // The approver sees what the approval will cover, read from the trail and verified here:
  // who asked and why, selector, fields, every record with its owner, and the hashes signed.
  expect(listed).toContain('requester:  erin (signature verified');
  expect(listed).toContain('reason:     Support case: confirm the login IP.');
  expect(listed).toContain(`selector:   {"messageIds":["${messageId}"]}`);
  expect(listed).toContain('fields:     ip, device_id');
  expect(listed).toContain(`user_logins:${messageId}  user cli-recovery-user`);
  expect(listed).toContain('per user:   cli-recovery-user × 1');
  expect(listed).toMatch(/record set: +[0-9a-f]{64}/);
  expect(listed).toMatch(/request digest: [0-9a-f]{64}/);
  expect(JSON.parse((await withoutKeys(['requests', '--json'])).stdout)).toEqual({
    pending: [
      expect.objectContaining({
        requestId,
        requester: 'erin',
        records: [{ table: 'user_logins', messageId, userId: 'cli-recovery-user' }],
        contradictions: [],
      }),
    ],
    unverified: [],
  });
  const self = await withoutKeys(['approve', requestId, '--operator', 'erin']).catch((e) => e);
  expect(self.code).toBe(2);
  expect(self.stderr).toContain('Your decision does not count: the requester cannot decide on their own request');
  const approved = await withoutKeys(['approve', requestId, '--operator', 'frank', '--comment', 'ok']);
  expect(approved.stdout).toContain(`Request ${requestId}: approved; completed.`);
  expect(approved.stderr).toContain('exactly the request and the 1 record(s) above');

  const result = await withoutKeys(['recover', '--operator', 'erin', '--resume', requestId]);
  expect(
    result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l)),
  ).toEqual([{ table: 'user_logins', messageId: rows[0].message_id, ip: SAMPLE[0].ip, device_id: SAMPLE[0].device_id }]);
  expect((await client(['audit', 'verify'])).stdout).toMatch(/Audit trail intact: \d+ entries/);
  expect(fs.existsSync(operatorEnv.PII_KEYRING_FILE)).toBe(false); // nothing made one either
  expect(JSON.parse((await client(['audit', 'verify', '--json'])).stdout)).toMatchObject({
    ok: true,
    entries: expect.any(Number),
    head: expect.any(String),
  });

  const rotated = await client(['keys', 'rotate']);
  expect(rotated.stdout).toMatch(/Rotated: k-\S+ → k-\S+/);
  expect(rotated.stdout).toMatch(/Re-encrypted \d+ row\(s\)/);
  const status = (await client(['keys', 'status'])).stdout;
  expect(status).toMatch(/Keys: +k-\S+, k-\S+/);
  expect(status).not.toContain('not yet re-encrypted');
  const statusJson = JSON.parse((await client(['keys', 'status', '--json'])).stdout);
  expect(statusJson).toMatchObject({
    activeKeyId: expect.stringMatching(/^k-/),
    keyIds: [expect.any(String), expect.any(String)],
  });
  expect(statusJson.usage.every((u: { keyId: string }) => u.keyId === statusJson.activeKeyId)).toBe(true);
});

test('the codec server runs without the PII keys, decodes the history with the codec key alone, and serves no /encode', async () => {
  const env = {
    PATH: process.env.PATH!,
    HOME: process.env.HOME ?? '/tmp',
    ...p.env,
    PII_KEYRING_FILE: path.join(os.tmpdir(), `absent-${Date.now()}`, 'keyring.json'),
    PII_MASTER_KEY: '',
  };
  const child = spawn(process.execPath, ['-r', 'ts-node/register', 'client.ts', 'codec-server', '--port', '0'], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output.push(chunk.toString());
        const m = /Codec server on (http:\/\/[\d.:]+)/.exec(output.join(''));
        if (m) resolve(m[1]);
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('exit', (code) => reject(new Error(`codec-server exited (${code}): ${output.join('')}`)));
    });
    const token = fs.readFileSync(path.join(p.env.DATA_DIR, 'codec-server.token'), 'utf8').trim();
    const run = await runIngest(p.client, p.config, optionsFromConfig(p.config.ingest));
    const events = (await p.client.workflow.getHandle(run.workflowId, run.runId).fetchHistory()).events ?? [];
    const payload = events[0].workflowExecutionStartedEventAttributes!.input!.payloads![0];
    const json = {
      metadata: Object.fromEntries(
        Object.entries(payload.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
      ),
      data: Buffer.from(payload.data!).toString('base64'),
    };
    const post = (endpoint: string) =>
      fetch(`${url}/${endpoint}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ payloads: [json] }),
      });
    const decoded = await post('decode');
    expect(decoded.status).toBe(200);
    const [out] = ((await decoded.json()) as { payloads: { metadata: Record<string, string> }[] }).payloads;
    expect(Buffer.from(out.metadata.encoding, 'base64').toString()).toBe('json/plain');
    expect((await post('encode')).status).toBe(404);
    expect(fs.existsSync(env.PII_KEYRING_FILE)).toBe(false);
    expect(output.join('')).not.toContain(token);
  } finally {
    child.kill('SIGINT');
  }
});
