// Production custody on AWS, on the real wire protocols (moto's server: its KMS refuses a
// Decrypt under another encryption context, its S3 refuses to delete a version locked in
// COMPLIANCE mode): the PII keys wrapped by KMS, and the audit trail's head anchored in
// write-once S3. One moto and one pipeline for the whole file; moto answers in tens of
// milliseconds a call, so the data stays small.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { CreateAliasCommand, CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  ListObjectVersionsCommand,
  PutObjectLockConfigurationCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Client as PgClient } from 'pg';
import { optionsFromConfig, runIngest } from '../../cli/ingest-run';
import { createAnchorSchedule } from '../../cli/schedule';
import { AUDIT_ANCHOR_SCHEDULE_ID } from '../../lib/contract/names';
import { sampleBodies } from '../../lib/ingest/load';
import { sendMessages } from '../../lib/ingest/sqs';
import { EncryptionCodec } from '../../lib/pii/codec';
import { KmsKeyWrapper } from '../../lib/pii/kms';
import {
  codecKeyContext,
  codecKeysOf,
  codecKeyWrapperFor,
  dataKeyContext,
  FINGERPRINT_KEY_CONTEXT,
  loadCodecKeys,
  loadCodecKeysAsync,
  loadKeyring,
  rewrapCodecKeyFile,
  type Keyring,
} from '../../lib/pii/keyring';
import { loadConfig } from '../../lib/platform/config';
import { createDb } from '../../lib/platform/db';
import { appendAudit, entryHash, verifyAuditChain } from '../../lib/recovery/audit';
import { anchorStore, S3AnchorStore, verifyAnchors, writeAnchor } from '../../lib/recovery/anchor';
import { decryptRecords } from '../../lib/recovery/records';
import { startWorker } from '../../worker';
import { runClient, SAMPLE, startPipeline, type Pipeline } from './helpers';
import { startMoto } from './moto';

const REGION = 'us-east-1';
const LOCKED_BUCKET = 'audit-anchors-locked';
const PLAIN_BUCKET = 'audit-anchors-plain';
const creds = { accessKeyId: 'test', secretAccessKey: 'test' };

let moto: Awaited<ReturnType<typeof startMoto>>;
let p: Pipeline;
let owner: PgClient;
let keyArn: string;
let s3: S3Client;

beforeAll(async () => {
  moto = await startMoto();
  const kms = new KMSClient({ region: REGION, endpoint: moto.endpoint, credentials: creds });
  keyArn = (await kms.send(new CreateKeyCommand({ Description: 'PII KEK' }))).KeyMetadata!.Arn!;
  await kms.send(new CreateAliasCommand({ AliasName: 'alias/login-ingest-pii', TargetKeyId: keyArn }));
  kms.destroy();
  s3 = new S3Client({ region: REGION, endpoint: moto.endpoint, forcePathStyle: true, credentials: creds });
  await s3.send(new CreateBucketCommand({ Bucket: LOCKED_BUCKET, ObjectLockEnabledForBucket: true }));
  await s3.send(
    new PutObjectLockConfigurationCommand({
      Bucket: LOCKED_BUCKET,
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 1 } } },
    }),
  );
  await s3.send(new CreateBucketCommand({ Bucket: PLAIN_BUCKET }));
  p = await startPipeline('custody', {
    AWS_ENDPOINT_URL_KMS: moto.endpoint,
    AWS_ENDPOINT_URL_S3: moto.endpoint,
    AUDIT_ANCHOR: `s3://${LOCKED_BUCKET}/trail`,
    WORKER_DRAIN_THREADS: '0',
  });
  owner = new PgClient({ connectionString: p.ownerDatabaseUrl });
  await owner.connect();
}, 240_000);

afterAll(async () => {
  await p?.client.schedule
    .getHandle(AUDIT_ANCHOR_SCHEDULE_ID)
    .delete()
    .catch(() => {});
  await owner?.end();
  await p?.close();
  s3?.destroy();
  await moto?.stop();
});

test('KMS wraps and unwraps a key under its context, and refuses another context or a missing key by name', async () => {
  const wrapper = new KmsKeyWrapper({ kind: 'aws-kms', keyId: keyArn, region: REGION, endpoint: moto.endpoint });
  const key = crypto.randomBytes(32);
  const wrapped = await wrapper.wrap(key, 'data-key:k-1');
  expect(wrapped.includes(key)).toBe(false);
  expect((await wrapper.unwrap(wrapped, 'data-key:k-1')).equals(key)).toBe(true);
  await expect(wrapper.unwrap(wrapped, 'data-key:k-2')).rejects.toThrow(/KMS refused to decrypt/);
  await expect(wrapper.unwrap(wrapped, 'fingerprint-key')).rejects.toThrow(/KMS refused to decrypt/);
  const missing = new KmsKeyWrapper({ kind: 'aws-kms', keyId: 'alias/no-such-key', region: REGION, endpoint: moto.endpoint });
  await expect(missing.wrap(key, 'data-key:k-1')).rejects.toThrow(
    /alias\/no-such-key in us-east-1 does not exist.*PII_KEK and AWS_REGION/,
  );
  // By alias, in its region; the same alias asked for in another region is not found, and the error says to check the region.
  const byAlias = new KmsKeyWrapper({
    kind: 'aws-kms',
    keyId: 'alias/login-ingest-pii',
    region: REGION,
    endpoint: moto.endpoint,
  });
  expect((await byAlias.unwrap(await byAlias.wrap(key, 'fingerprint-key'), 'fingerprint-key')).equals(key)).toBe(true);
  const elsewhere = new KmsKeyWrapper({
    kind: 'aws-kms',
    keyId: 'alias/login-ingest-pii',
    region: 'eu-west-1',
    endpoint: moto.endpoint,
  });
  await expect(elsewhere.wrap(key, 'fingerprint-key')).rejects.toThrow(/in eu-west-1 does not exist.*AWS_REGION/);
  for (const w of [wrapper, missing, byAlias, elsewhere]) w.destroy();
});

test("the payload codec's key file wrapped by KMS: loaded through KMS, it decodes the pipeline's payloads; its keys never unwrap as PII keys", async () => {
  // A copy of the pipeline's codec key file (its worker keeps reading the original).
  const file = path.join(path.dirname(p.env.TEMPORAL_CODEC_KEY_FILE), 'codec-keys-kms.json');
  fs.copyFileSync(p.env.TEMPORAL_CODEC_KEY_FILE, file);
  fs.chmodSync(file, 0o600);
  const config = loadConfig({ ...p.env, TEMPORAL_CODEC_KEY_FILE: file });
  const plain = loadCodecKeys(config, () => {});

  const cli = await runClient(p, ['keys', 'codec-rewrap', '--to', 'aws-kms:alias/login-ingest-pii', '--file', file]);
  expect(cli.stdout).toContain('1 codec key(s), from plain to aws-kms:alias/login-ingest-pii');
  const onDisk = JSON.parse(fs.readFileSync(file, 'utf8')) as { kek: string; wrappedKeys: Record<string, string> };
  expect(onDisk.kek).toBe('aws-kms:alias/login-ingest-pii');
  expect([...plain.keys.values()].filter((k) => fs.readFileSync(file, 'utf8').includes(k.toString('base64')))).toEqual([]);

  // The synchronous loader refuses it with the fix; the asynchronous one and loadKeyring unwrap it through KMS.
  expect(() => loadCodecKeys(config, () => {})).toThrow(/cannot unwrap it: load it with loadCodecKeysAsync/);
  const codecKeys = await loadCodecKeysAsync(config, () => {});
  expect(codecKeys.activeKeyId).toBe(plain.activeKeyId);
  const viaKeyring = codecKeysOf(await loadKeyring(config, () => {}));
  const value = { ip: '203.0.113.7', device_id: 'device-1' };
  const encoded = await new EncryptionCodec(plain).encode([defaultPayloadConverter.toPayload(value)]);
  expect(Buffer.from(encoded[0].data!).includes('203.0.113.7')).toBe(false);
  for (const keys of [codecKeys, viaKeyring]) {
    const [decoded] = await new EncryptionCodec(keys).decode(encoded);
    expect(defaultPayloadConverter.fromPayload(decoded)).toEqual(value);
  }

  // KMS binds codec-key:<id>: the wrapped codec key is refused as a PII data key or the fingerprint key, and the reverse.
  const kms = new KmsKeyWrapper({ kind: 'aws-kms', keyId: 'alias/login-ingest-pii', region: REGION, endpoint: moto.endpoint });
  try {
    const [id, wrapped] = Object.entries(onDisk.wrappedKeys)[0];
    const blob = Buffer.from(wrapped, 'base64');
    expect((await kms.unwrap(blob, codecKeyContext(id))).equals(plain.keys.get(id)!)).toBe(true);
    await expect(kms.unwrap(blob, dataKeyContext(id))).rejects.toThrow(/KMS refused to decrypt/);
    await expect(kms.unwrap(blob, FINGERPRINT_KEY_CONTEXT)).rejects.toThrow(/KMS refused to decrypt/);
    const dataKey = await kms.wrap(crypto.randomBytes(32), dataKeyContext(id));
    await expect(kms.unwrap(dataKey, codecKeyContext(id))).rejects.toThrow(/KMS refused to decrypt/);
  } finally {
    kms.destroy();
  }

  // And back, for a migration away from KMS: the same keys, plain again.
  await rewrapCodecKeyFile(file, (kek) => codecKeyWrapperFor(kek, config), 'plain');
  expect(loadCodecKeys(config, () => {}).keys).toEqual(plain.keys);
});

test('anchors: on the schedule, to locked S3; a deleted tail and a full rewrite by the owner are both reported by entry and anchor', async () => {
  const store = anchorStore(p.config);
  // Entries as the recovery worker writes them (its role alone may append record_read, migration 0006).
  const recoveryDb = createDb(p.config.recoveryDatabaseUrl);
  try {
    await expect(
      new S3AnchorStore({ bucket: PLAIN_BUCKET, prefix: '', region: REGION, endpoint: moto.endpoint, retentionDays: 1 }).open(),
    ).rejects.toThrow(/bucket audit-anchors-plain has no Object Lock/);
    // The worker refuses it at start, not at the first anchor.
    const plainConfig = loadConfig({ ...p.env, AUDIT_ANCHOR: `s3://${PLAIN_BUCKET}` });
    await expect(startWorker(plainConfig, p.keyring)).rejects.toThrow(/has no Object Lock/);

    await appendAudit(
      recoveryDb,
      [1, 2, 3, 4, 5].map((i) => ({ requestId: `r-${i}`, event: 'record_read' as const, actor: 'alice', details: { n: i } })),
    );
    // The schedule's run, on the worker.
    await createAnchorSchedule(p.client, p.config, '1h');
    await p.client.schedule.getHandle(AUDIT_ANCHOR_SCHEDULE_ID).trigger();
    for (let i = 0; (await store.list()).length === 0; i++) {
      if (i > 100) throw new Error('the scheduled anchor never arrived');
      await new Promise((r) => setTimeout(r, 100));
    }
    const [scheduled] = await store.list();
    expect(scheduled.anchor).toMatchObject({ entries: 5 });
    expect(scheduled.where).toMatch(new RegExp(`^s3://${LOCKED_BUCKET}/trail/audit-anchor-`));

    await appendAudit(recoveryDb, [{ requestId: 'r-6', event: 'record_read', actor: 'alice', details: { n: 6 } }]);
    await appendAudit(recoveryDb, [{ requestId: 'r-7', event: 'record_read', actor: 'alice', details: { n: 7 } }]);
    const second = await writeAnchor(p.db, store);
    expect(second.anchor.entries).toBe(7);
    expect(await verifyAnchors(p.db, store)).toEqual({ anchors: 2, findings: [] });

    // The locked anchor cannot be deleted, not even by version.
    const versions = (await s3.send(new ListObjectVersionsCommand({ Bucket: LOCKED_BUCKET }))).Versions ?? [];
    expect(versions).toHaveLength(2);
    await expect(
      s3.send(new DeleteObjectCommand({ Bucket: LOCKED_BUCKET, Key: versions[0].Key, VersionId: versions[0].VersionId })),
    ).rejects.toMatchObject({ name: 'AccessDenied' });

    // The owner deletes the newest two entries: the chain alone still verifies.
    await owner.query(`ALTER TABLE pii_audit_log DISABLE TRIGGER USER;
      DELETE FROM pii_audit_log WHERE id > (SELECT min(id) + 4 FROM pii_audit_log);
      ALTER TABLE pii_audit_log ENABLE TRIGGER USER`);
    expect(await verifyAuditChain(p.db)).toMatchObject({ ok: true, entries: 5 });
    const truncated = await verifyAnchors(p.db, store);
    expect(truncated.findings.map((f) => f.entry)).toEqual([second.anchor.lastId]);
    expect(truncated.findings[0].problem).toMatch(/deleted from the end of the trail/);
    expect(truncated.findings[0].anchor.startsWith(second.where.split('?')[0])).toBe(true);

    // The owner rewrites the whole chain consistently (entry 2 edited, every hash recomputed).
    await owner.query(`ALTER TABLE pii_audit_log DISABLE TRIGGER USER; DROP INDEX IF EXISTS pii_audit_log_hash_key;
      UPDATE pii_audit_log SET actor = 'mallory' WHERE id = (SELECT min(id) + 1 FROM pii_audit_log)`);
    const rows = (
      await owner.query(`SELECT id, jsonb_build_array(id::text, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        request_id, event, actor, details)::text AS content FROM pii_audit_log ORDER BY id`)
    ).rows as { id: string; content: string }[];
    let prev = '0'.repeat(64);
    for (const r of rows) {
      const hash = entryHash(prev, r.content);
      await owner.query('UPDATE pii_audit_log SET prev_hash = $1, hash = $2 WHERE id = $3', [prev, hash, r.id]);
      prev = hash;
    }
    await owner.query('ALTER TABLE pii_audit_log ENABLE TRIGGER USER');
    expect(await verifyAuditChain(p.db)).toMatchObject({ ok: true, entries: 5 });
    const rewritten = await verifyAnchors(p.db, store);
    const kind = (problem: string) =>
      /the chain was rewritten/.test(problem) ? 'rewritten' : /deleted from the end/.test(problem) ? 'truncated' : problem;
    expect(rewritten.findings.map((f) => [f.entry, f.problem.startsWith(`entry ${f.entry} `), kind(f.problem)])).toEqual([
      [scheduled.anchor!.lastId, true, 'rewritten'],
      [second.anchor.lastId, true, 'truncated'],
    ]);

    // As an operator sees it: every finding by entry and anchor, exit code 1.
    const cli = await runClient(p, ['audit', 'verify']).catch((e) => e);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain('Audit trail intact: 5 entries');
    expect(cli.stderr).toContain(`entry ${scheduled.anchor!.lastId} has hash`);
    expect(cli.stderr).toContain(scheduled.where.split('?')[0]);
    expect(cli.stderr).toMatch(new RegExp(`entry ${second.anchor.lastId} .*deleted from the end`));
  } finally {
    store.close();
    await recoveryDb.$disconnect();
  }
});

test('a local key file re-wrapped by KMS keeps every row decryptable; a worker started with KMS masks and recovers the exact values', async () => {
  const before = sampleBodies().slice(0, 10);
  const beforeIds = await sendMessages(p.sqs, p.config.sqs.queueUrl, before);
  await runIngest(p.client, p.config, optionsFromConfig(p.config.ingest));
  await p.stopWorker();

  const rewrapped = await runClient(p, ['keys', 'rewrap', '--to', `aws-kms:${keyArn}`]);
  expect(rewrapped.stdout).toMatch(new RegExp(`from local:[0-9a-f]{8} to aws-kms:${keyArn.replace(/[/]/g, '\\/')}`));
  const file = JSON.parse(fs.readFileSync(p.env.PII_KEYRING_FILE, 'utf8'));
  expect(file.kek).toBe(`aws-kms:${keyArn}`);
  const plainKeys = [...p.keyring.keys.values(), p.keyring.fingerprintKey].map((k) => k.toString('base64'));
  expect(plainKeys.filter((k) => JSON.stringify(file).includes(k))).toEqual([]);

  // Without the master key: PII_KEK alone.
  const env: Record<string, string> = { ...p.env, PII_KEK: `aws-kms:${keyArn}` };
  delete env.PII_MASTER_KEY;
  const config = loadConfig(env);
  const keyring: Keyring = await loadKeyring(config, () => {});
  expect([...keyring.keys.keys()]).toEqual([...p.keyring.keys.keys()]);
  expect((await runClient(p, ['keys', 'status'], { PII_KEK: `aws-kms:${keyArn}`, PII_MASTER_KEY: '' })).stdout).toMatch(
    /Wrapped by: aws-kms:\S+ \(AWS KMS key/,
  );

  const worker = await startWorker(config, keyring);
  try {
    const after = sampleBodies().slice(10, 20);
    const afterIds = await sendMessages(p.sqs, p.config.sqs.queueUrl, after);
    await runIngest(p.client, config, optionsFromConfig(config.ingest));
    const ids = [...beforeIds, ...afterIds];
    const refs = ids.map((messageId) => ({ table: 'user_logins' as const, messageId }));
    const records = await decryptRecords(p.db, keyring, refs, ['ip', 'device_id']);
    const expected = ids
      .map((id, i) => ({ id, event: SAMPLE[i] }))
      .filter(({ id }) => records.some((r) => r.messageId === id))
      .map(({ id, event }) => ({ table: 'user_logins', messageId: id, ip: event.ip, device_id: event.device_id }));
    expect(records.length).toBeGreaterThanOrEqual(18); // the sample's first 20 hold at most a couple of invalid events
    expect(records.some((r) => afterIds.includes(r.messageId))).toBe(true);
    expect([...records].sort((a, b) => a.messageId.localeCompare(b.messageId))).toEqual(
      expected.sort((a, b) => a.messageId.localeCompare(b.messageId)),
    );
  } finally {
    await worker.shutdown();
  }
});
