// Key rotation end to end: a new active key for new rows at once, the re-encryption
// workflow moving old rows, fingerprints still comparable, old histories still readable,
// and recoveries of old and new rows.
import fs from 'node:fs';
import { Client as PgClient } from 'pg';
import { appendAudit, verifyAuditChain } from '../../lib/recovery/audit';
import { EncryptionCodec } from '../../lib/pii/codec';
import { optionsFromConfig, runIngest, type IngestRun } from '../../cli/ingest-run';
import { loadCodecKeys, refreshKeyring } from '../../lib/pii/keyring';
import { openPii } from '../../lib/pipeline/mask';
import { sampleBodies } from '../../lib/ingest/load';
import { generateOperatorKeys, writePrivateKey } from '../../lib/recovery';
import { awaitRecovery, operatorKeyFile, recoveryStatus, startRecovery } from '../../cli/recovery-client';
import { closeOperatorDb, decide } from './decisions';
import { sendMessages } from '../../lib/ingest/sqs';
import { reencryptWorkflow } from '../../workflows/reencrypt';
import { createDatabase, findPlaintext, runClient, SAMPLE, SAMPLE_PII, startPipeline, type Pipeline } from './helpers';
import { createDb } from '../../lib/platform/db';
import { migrate } from '../../lib/platform/migrate';

let p: Pipeline;
let pg: PgClient;
let firstRun: IngestRun;
let oldIds: string[];
let oldKey: string;

const keyOf = async (messageId: string) =>
  (await pg.query('SELECT pii_key_id FROM user_logins WHERE message_id = $1', [messageId])).rows[0]?.pii_key_id;

beforeAll(async () => {
  p = await startPipeline('keys');
  const lines = [];
  for (const [name, roles] of [
    ['alice', ['pii-requester']],
    ['bob', ['pii-approver']],
  ] as const) {
    const keys = generateOperatorKeys(name, [...roles]);
    writePrivateKey(operatorKeyFile(p.config, name), keys.privateKeyPem);
    lines.push(keys.registryLine);
  }
  fs.writeFileSync(p.config.recovery.operatorsFile, lines.join('\n') + '\n');
  pg = new PgClient({ connectionString: p.config.databaseUrl });
  await pg.connect();
  oldKey = p.keyring.activeKeyId;
  oldIds = await sendMessages(p.sqs, p.config.sqs.queueUrl, sampleBodies().slice(0, 13));
  firstRun = await runIngest(p.client, p.config, optionsFromConfig(p.config.ingest));
});

afterAll(async () => {
  if (p) await closeOperatorDb(p);
  await pg?.end();
  await p?.close();
});

test('after a rotation, new rows use the new key at once; re-encryption moves the old ones; fingerprints stay comparable', async () => {
  expect(await keyOf(oldIds[0])).toBe(oldKey);
  // As an operator rotates: the key file, and the rotation recorded in the audit trail as the owner (the re-encryption's authority).
  const rotated = (await runClient(p, ['keys', 'rotate', '--no-reencrypt'])).stdout;
  const [, previousKeyId, newKeyId] = /Rotated: (k-\S+) → (k-\S+) .*recorded in the audit trail/.exec(rotated) ?? [];
  expect(previousKeyId).toBe(oldKey);
  await new Promise((r) => setTimeout(r, 1100)); // the worker looks at the key file at most once a second

  // The same login again, after the rotation: new key, same fingerprints.
  const [newId] = await sendMessages(p.sqs, p.config.sqs.queueUrl, [JSON.stringify(SAMPLE[0])]);
  await runIngest(p.client, p.config, optionsFromConfig(p.config.ingest));
  expect(await keyOf(newId)).toBe(newKeyId);
  const masks = await pg.query(
    'SELECT message_id, masked_ip, masked_device_id, login_fingerprint FROM user_logins WHERE message_id = ANY($1)',
    [[oldIds[0], newId]],
  );
  expect(masks.rows).toHaveLength(2);
  expect(masks.rows[0].masked_ip).toBe(masks.rows[1].masked_ip);
  expect(masks.rows[0].masked_device_id).toBe(masks.rows[1].masked_device_id);
  expect(masks.rows[0].login_fingerprint).toBe(masks.rows[1].login_fingerprint);

  // One old row (not the user the next test recovers) becomes undecryptable: a byte of its IP ciphertext flipped, as the owner.
  const {
    rows: [{ message_id: corrupted }],
  } = await pg.query('SELECT message_id FROM user_logins WHERE message_id = ANY($1) AND user_id <> $2 ORDER BY id LIMIT 1', [
    oldIds,
    String(SAMPLE[0].user_id),
  ]);
  const owner = new PgClient({ connectionString: p.ownerDatabaseUrl });
  await owner.connect();
  await owner.query(
    `UPDATE user_logins SET ip_ciphertext = set_byte(ip_ciphertext, length(ip_ciphertext) - 1, get_byte(ip_ciphertext, length(ip_ciphertext) - 1) # 1) WHERE message_id = $1`,
    [corrupted],
  );
  await owner.end();

  const summary = await p.client.workflow.execute(reencryptWorkflow, {
    workflowId: `reencrypt-${Date.now()}`,
    taskQueue: p.config.temporal.taskQueue,
    args: [{ pageSize: 3 }],
  });
  // The sample's 13th message is the quarantined one; the corrupted row is skipped, the rest move on.
  expect(summary).toEqual({ reencrypted: { user_logins: 11, quarantine: 1 }, skipped: { user_logins: 1, quarantine: 0 } });
  const keys = await pg.query(
    `SELECT pii_key_id, count(*)::int AS n FROM (SELECT pii_key_id FROM user_logins UNION ALL SELECT pii_key_id FROM quarantine) k GROUP BY 1 ORDER BY 2`,
  );
  expect(keys.rows).toEqual([
    { pii_key_id: oldKey, n: 1 },
    { pii_key_id: newKeyId, n: 13 },
  ]);
  expect(await keyOf(corrupted)).toBe(oldKey);
  // The moved rows decrypt under the new key to what was sent.
  await refreshKeyring(p.keyring, { force: true });
  const sent = new Map(oldIds.map((id, i) => [id, JSON.parse(sampleBodies()[i]) as { ip: string }]));
  const moved = await pg.query(
    'SELECT message_id, ip_ciphertext, pii_key_id FROM user_logins WHERE message_id = ANY($1) AND message_id <> $2',
    [oldIds, corrupted],
  );
  expect(moved.rows).toHaveLength(11);
  for (const r of moved.rows) {
    expect(r.pii_key_id).toBe(newKeyId);
    expect(openPii(p.keyring, r.pii_key_id, r.ip_ciphertext, r.message_id, 'ip').toString()).toBe(sent.get(r.message_id)!.ip);
  }
  // The skipped row is audited by IDs and a reason, never a value.
  const skippedEntries = async () =>
    (await pg.query(`SELECT actor, details FROM pii_audit_log WHERE event = 'reencrypt_skipped' ORDER BY id`)).rows;
  const entry = {
    actor: null,
    details: { table: 'user_logins', messageId: corrupted, keyId: oldKey, field: 'ip', reason: 'auth_failed' },
  };
  expect(await skippedEntries()).toEqual([entry]);

  // Run again: nothing left to move (idempotent), the bad row reported (and audited) again.
  expect(
    await p.client.workflow.execute(reencryptWorkflow, {
      workflowId: `reencrypt-again-${Date.now()}`,
      taskQueue: p.config.temporal.taskQueue,
      args: [{}],
    }),
  ).toEqual({ reencrypted: { user_logins: 0, quarantine: 0 }, skipped: { user_logins: 1, quarantine: 0 } });
  expect(await skippedEntries()).toEqual([entry, entry]);
});

test('after the rotation, old and new rows decrypt through an approved recovery', async () => {
  const id = await startRecovery(
    p.client,
    p.config,
    { operator: 'alice' },
    {
      reason: 'Verify both keys after the rotation.',
      ticket: 'OPS-7',
      selector: { userId: String(SAMPLE[0].user_id) },
      fields: ['ip', 'device_id'],
    },
  );
  for (let i = 0; i < 50 && (await recoveryStatus(p.client, id).catch(() => null))?.state !== 'awaiting_approval'; i++)
    await new Promise((r) => setTimeout(r, 100));
  await decide(p, 'bob', id, 'approve');
  const outcome = await awaitRecovery(p.client, p.config, id);
  if (!('records' in outcome)) throw new Error(JSON.stringify(outcome.result));
  expect(outcome.records).toHaveLength(2);
  for (const r of outcome.records) expect(r).toMatchObject({ ip: SAMPLE[0].ip, device_id: SAMPLE[0].device_id });
});

test('histories are encrypted with the codec key, never a PII data key, and still decode after the data key rotated', async () => {
  const events = (await p.client.workflow.getHandle(firstRun.workflowId, firstRun.runId).fetchHistory()).events ?? [];
  const payloads = events.flatMap((e) => e.activityTaskScheduledEventAttributes?.input?.payloads ?? []);
  expect(payloads.length).toBeGreaterThan(0);
  const codecKeys = loadCodecKeys(p.config, () => {});
  const used = new Set(payloads.map((pl) => Buffer.from(pl.metadata!['encryption-key-id']).toString()));
  expect(used).toEqual(new Set([codecKeys.activeKeyId]));
  for (const id of used) expect(p.keyring.keys.has(id)).toBe(false);
  // The codec key opens no stored value, and the data keys open no payload.
  expect(() => new EncryptionCodec(codecKeys)).not.toThrow();
  const dataKeysAsCodec = { kind: 'codec-keys' as const, activeKeyId: oldKey, keys: p.keyring.keys, source: 'data keys' };
  await expect(new EncryptionCodec(dataKeysAsCodec).decode(payloads.slice(0, 1))).rejects.toThrow(/does not hold/);
  // Decoded after the rotation, the inputs read as what they are: drain options and counts, no message data.
  const decoded = (await new EncryptionCodec(p.keyring).decode(payloads)).map((d) => Buffer.from(d.data ?? []).toString('utf8'));
  expect(decoded.some((d) => d.includes('"chunkSize"'))).toBe(true);
  expect(findPlaintext([{ where: 'decoded', value: decoded }], SAMPLE_PII)).toEqual([]);
});

test('audit verify names an edited, a deleted and a reordered entry', async () => {
  const scenarios: [string, string, RegExp][] = [
    [
      'edited',
      `UPDATE pii_audit_log SET actor = 'mallory' WHERE id = (SELECT min(id) + 2 FROM pii_audit_log)`,
      /does not match its hash/,
    ],
    ['deleted', `DELETE FROM pii_audit_log WHERE id = (SELECT min(id) + 2 FROM pii_audit_log)`, /does not follow/],
    [
      'reordered', // entries 3 and 4 swap places, each keeping its own content and hashes
      `DROP INDEX pii_audit_log_hash_key;
       UPDATE pii_audit_log a SET event = b.event, details = b.details, actor = b.actor, request_id = b.request_id, at = b.at, prev_hash = b.prev_hash, hash = b.hash
       FROM pii_audit_log b, (SELECT min(id) + 2 AS first FROM pii_audit_log) m
       WHERE (a.id = m.first AND b.id = m.first + 1) OR (a.id = m.first + 1 AND b.id = m.first)`,
      /does not (follow|match)/,
    ],
  ];
  for (const [name, tamper, problem] of scenarios) {
    const url = await createDatabase(`audit_${name}_${Date.now()}`);
    await migrate(url, () => {});
    const db = createDb(url);
    try {
      const stored = await appendAudit(
        db,
        [1, 2, 3, 4, 5].map((i) => ({
          requestId: `r-${i}`,
          event: 'record_read' as const,
          actor: 'alice',
          details: { messageId: `m-${i}` },
        })),
      );
      expect(await verifyAuditChain(db)).toMatchObject({ ok: true, entries: 5 });
      // Tampering takes the owner switching the append-only triggers off: the application cannot.
      const admin = new PgClient({ connectionString: url });
      await admin.connect();
      await admin.query(
        `ALTER TABLE pii_audit_log DISABLE TRIGGER USER; ${tamper}; ALTER TABLE pii_audit_log ENABLE TRIGGER USER`,
      );
      await admin.end();
      const result = await verifyAuditChain(db);
      expect(result.ok).toBe(false);
      if (result.ok) continue;
      expect(result.problem).toMatch(problem);
      expect(result.brokenAt).toBe(stored[name === 'deleted' ? 3 : 2].id);
    } finally {
      await db.$disconnect();
    }
  }
});
