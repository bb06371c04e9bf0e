// The audited recovery workflow on real services: the one door through which PII comes
// back, and every way of knocking on it without the right to.
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { WorkflowIdReusePolicy } from '@temporalio/client';
import { Client as PgClient } from 'pg';
import { recoveryWorkflowId } from '../../lib/contract/names';
import { auditEntriesFor, verifyAuditChain } from '../../lib/recovery/audit';
import { EncryptionCodec } from '../../lib/pii/codec';
import { optionsFromConfig, runIngest } from '../../cli/ingest-run';
import { sampleBodies } from '../../lib/ingest/load';
import {
  canonicalJson,
  generateOperatorKeys,
  keyFingerprint,
  loadRegistry,
  readPrivateKey,
  sign,
  writePrivateKey,
  type RecoveryRequestBody,
  type Role,
} from '../../lib/recovery';
import { awaitRecovery, operatorKeyFile, recoveryStatus, startRecovery, type NewRequest } from '../../cli/recovery-client';
import { closeOperatorDb, decide } from './decisions';
import { newRecipientKeys } from '../../lib/pii/sealed';
import { sendMessages } from '../../lib/ingest/sqs';
import { findOrInstallTemporalCli } from '../../services/temporal-cli';
import { recoveryWorkflow } from '../../workflows/recovery';
import { findPlaintext, SAMPLE, SAMPLE_PII, startPipeline, testServices, type Pipeline } from './helpers';

const exec = promisify(execFile);
let p: Pipeline;
let pg: PgClient;
let sampleIds: string[];
let quarantinedId: string;

const OPERATORS: Record<string, Role[]> = {
  alice: ['pii-requester'],
  bob: ['pii-approver'],
  carol: ['pii-requester', 'pii-approver'],
  dave: ['pii-approver'],
};

const request = (overrides: Partial<NewRequest> = {}): NewRequest => ({
  reason: 'Customer reported account takeover; confirm the login IPs.',
  ticket: 'SEC-1234',
  selector: { messageIds: [sampleIds[0], sampleIds[1]] },
  fields: ['ip', 'device_id'],
  ...overrides,
});
const as = (operator: string) => ({ operator });
/** A request body as alice's CLI would build it, for tests that sign (or forge) it by hand. */
const aliceRequestBody = (): RecoveryRequestBody => ({
  type: 'pii-recovery-request',
  requestId: crypto.randomUUID(),
  operator: 'alice',
  ...request(),
  recipientPublicKey: newRecipientKeys().publicKey,
  issuedAt: new Date().toISOString(),
});
const waitFor = async (requestId: string, state: string) => {
  for (let i = 0; i < 100; i++) {
    const s = await recoveryStatus(p.client, requestId).catch(() => null);
    if (s?.state === state) return s;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`request ${requestId} never reached ${state}`);
};
const decryptedFor = async (requestId: string) =>
  (await auditEntriesFor(p.db, requestId)).filter((e) => e.event === 'record_read');

/** Operators with their keys in the pipeline's DATA_DIR and a registry the worker reads. */
function registerOperators(pipeline: Pipeline): void {
  const registry: string[] = [];
  for (const [name, roles] of Object.entries(OPERATORS)) {
    const keys = generateOperatorKeys(name, roles);
    writePrivateKey(operatorKeyFile(pipeline.config, name), keys.privateKeyPem);
    registry.push(keys.registryLine);
  }
  fs.writeFileSync(pipeline.config.recovery.operatorsFile, registry.join('\n') + '\n');
}

beforeAll(async () => {
  // The worker runs as users run it (npx ts-node worker.ts), so its real logs can be searched.
  p = await startPipeline(
    'recovery',
    { PII_RECOVERY_MAX_RECORDS: '5', PII_RECOVERY_APPROVAL_TIMEOUT_SECONDS: '120', LOG_LEVEL: 'INFO' },
    { subprocessWorker: true },
  );
  registerOperators(p);
  pg = new PgClient({ connectionString: p.config.databaseUrl });
  await pg.connect();

  const bodies = sampleBodies();
  sampleIds = await sendMessages(p.sqs, p.config.sqs.queueUrl, bodies);
  await runIngest(p.client, p.config, optionsFromConfig(p.config.ingest));
  quarantinedId = (await pg.query('SELECT message_id FROM quarantine')).rows[0].message_id;
});

afterAll(async () => {
  if (p) await closeOperatorDb(p);
  await pg?.end();
  await p?.close();
});

test('an approved recovery returns exactly the original IP and device ID, sealed to the requester', async () => {
  const id = await startRecovery(p.client, p.config, as('alice'), request());
  await waitFor(id, 'awaiting_approval');
  expect(await decide(p, 'bob', id, 'approve')).toMatchObject({ counted: true, refused: null, state: 'completed' });
  const outcome = await awaitRecovery(p.client, p.config, id);
  if (!('records' in outcome)) throw new Error(`not completed: ${JSON.stringify(outcome.result)}`);
  const byId = Object.fromEntries(outcome.records.map((r) => [r.messageId, r]));
  for (const i of [0, 1]) {
    expect(byId[sampleIds[i]]).toEqual({
      table: 'user_logins',
      messageId: sampleIds[i],
      ip: SAMPLE[i].ip,
      device_id: SAMPLE[i].device_id,
    });
  }
  const trail = (await auditEntriesFor(p.db, id)).map((e) => e.event);
  expect(trail).toEqual([
    'request_received',
    'authorised',
    'decision_signed',
    'approved',
    'grant_consumed',
    'record_read',
    'record_read',
    'completed',
  ]);
  // A third party verifies who asked and who agreed from the trail and the registry alone.
  const registry = loadRegistry(p.config.recovery.operatorsFile);
  const entries = await auditEntriesFor(p.db, id);
  for (const [event, operator] of [
    ['request_received', 'alice'],
    ['decision_signed', 'bob'],
  ] as const) {
    const e = entries.find((x) => x.event === event)!;
    const publicKey = registry.byName.get(operator)!.publicKey;
    if (event === 'request_received') expect(e.details.keyFingerprint).toBe(keyFingerprint(publicKey));
    const key = crypto.createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey, 'base64').toString('base64url') },
      format: 'jwk',
    });
    const signature = Buffer.from(String(e.details.signature), 'base64');
    expect(crypto.verify(null, Buffer.from(canonicalJson(e.details.document), 'utf8'), key, signature)).toBe(true);
    // The control: the same check fails for a document that says something else.
    expect(
      crypto.verify(
        null,
        Buffer.from(canonicalJson({ ...(e.details.document as object), operator: 'mallory' }), 'utf8'),
        key,
        signature,
      ),
    ).toBe(false);
  }
  // The one-time key is gone: nobody can open the sealed result again from this machine.
  await expect(awaitRecovery(p.client, p.config, id)).rejects.toThrow(/one-time key/);
});

test('a quarantined body comes back exactly as received', async () => {
  const id = await startRecovery(
    p.client,
    p.config,
    as('alice'),
    request({ selector: { messageIds: [quarantinedId] }, fields: ['body'] }),
  );
  await waitFor(id, 'awaiting_approval');
  await decide(p, 'bob', id, 'approve');
  const outcome = await awaitRecovery(p.client, p.config, id);
  if (!('records' in outcome)) throw new Error('not completed');
  const original = sampleBodies()[sampleIds.indexOf(quarantinedId)];
  expect(outcome.records).toEqual([{ table: 'quarantine', messageId: quarantinedId, body: original }]);
});

test('without the requester role: refused, audited, nothing decrypted', async () => {
  const id = await startRecovery(p.client, p.config, as('dave'), request());
  const outcome = await awaitRecovery(p.client, p.config, id);
  expect(outcome.result).toMatchObject({ status: 'refused', code: 'not_a_requester' });
  expect((await auditEntriesFor(p.db, id)).map((e) => [e.event, e.details.code])).toEqual([
    ['request_received', undefined],
    ['request_refused', 'not_a_requester'],
  ]);
  expect(await decryptedFor(id)).toEqual([]);
});

test('a forged signature (bob signs as alice) is refused and audited', async () => {
  const body = aliceRequestBody();
  const forged = sign(body, readPrivateKey(operatorKeyFile(p.config, 'bob')));
  const result = await p.client.workflow.execute(recoveryWorkflow, {
    workflowId: recoveryWorkflowId(body.requestId),
    taskQueue: p.config.temporal.taskQueue,
    args: [forged],
  });
  expect(result).toMatchObject({ status: 'refused', code: 'bad_signature' });
  expect((await auditEntriesFor(p.db, body.requestId)).map((e) => [e.event, e.details.code])).toEqual([
    ['request_refused', 'bad_signature'],
  ]);
});

test('a replayed request is refused: under another workflow ID, and again under its own', async () => {
  const body = aliceRequestBody();
  const signed = sign(body, readPrivateKey(operatorKeyFile(p.config, 'alice')));
  const start = (workflowId: string) =>
    p.client.workflow.start(recoveryWorkflow, {
      workflowId,
      taskQueue: p.config.temporal.taskQueue,
      args: [signed],
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    });
  const first = await start(recoveryWorkflowId(body.requestId));
  await waitFor(body.requestId, 'awaiting_approval');
  const other = await (await start(`${recoveryWorkflowId(body.requestId)}-copy`)).result();
  expect(other).toMatchObject({ status: 'refused', code: 'replayed' });
  await decide(p, 'bob', body.requestId, 'deny');
  expect(await first.result()).toMatchObject({ status: 'denied' });
  // The same signed request once more, under its own ID (a reuse policy that allows it).
  expect(await (await start(recoveryWorkflowId(body.requestId))).result()).toMatchObject({ status: 'refused', code: 'replayed' });
  expect(await decryptedFor(body.requestId)).toEqual([]);
});

test('decisions sent to the workflow by hand (SDK or Temporal CLI), self-approvals or from non-approvers change nothing', async () => {
  const id = await startRecovery(p.client, p.config, as('carol'), request());
  const status0 = await waitFor(id, 'awaiting_approval');
  const handle = p.client.workflow.getHandle(recoveryWorkflowId(id));
  // A signed-looking approval handed to the workflow: it carries nothing, the trail holds no decision.
  expect(
    await handle.executeUpdate('decision', {
      args: [{ body: { decision: 'approve', recordSetHash: status0.recordSetHash }, signature: 'x' }],
    }),
  ).toMatchObject({ decided: false, code: 'no_decision' });
  // As an operator would from a shell: the Temporal CLI, with no codec and no key.
  const cli = await findOrInstallTemporalCli({ installDir: path.join(__dirname, '..', '..', '.data', 'bin') });
  const sent = await exec(cli, [
    'workflow',
    'update',
    'execute',
    '--address',
    testServices().temporalAddress,
    '--workflow-id',
    recoveryWorkflowId(id),
    '--name',
    'decision',
  ]).catch((e) => e);
  expect(String(sent.stderr ?? sent.message)).toMatch(/binary\/encrypted: payload encoding is not supported/);
  expect(await decide(p, 'carol', id, 'approve')).toMatchObject({ counted: false, refused: 'self_approval' });
  expect(await decide(p, 'alice', id, 'approve')).toMatchObject({ counted: false, refused: 'not_an_approver' });
  expect((await recoveryStatus(p.client, id)).state).toBe('awaiting_approval');
  expect((await auditEntriesFor(p.db, id)).filter((e) => e.event === 'approval_refused').map((e) => e.details.code)).toEqual([
    'self_approval',
    'not_an_approver',
  ]);
  expect(await decide(p, 'bob', id, 'deny')).toMatchObject({ counted: true, state: 'denied' });
  expect((await awaitRecovery(p.client, p.config, id)).result).toMatchObject({ status: 'denied' });
  // After the denial, no approval counts.
  expect(await decide(p, 'dave', id, 'approve')).toMatchObject({ counted: false });
  expect(await decryptedFor(id)).toEqual([]);
});

test('more records than the limit: refused before anything is decrypted', async () => {
  const id = await startRecovery(p.client, p.config, as('alice'), request({ selector: { messageIds: sampleIds.slice(0, 6) } }));
  expect((await awaitRecovery(p.client, p.config, id)).result).toMatchObject({ status: 'refused', code: 'too_many_records' });
  expect(await decryptedFor(id)).toEqual([]);
});

test('with nobody deciding, the request expires, audited', async () => {
  const short = await startPipeline(
    'expiry',
    { PII_RECOVERY_APPROVAL_TIMEOUT_SECONDS: '2', LOG_LEVEL: 'INFO' },
    { subprocessWorker: true },
  );
  try {
    registerOperators(short);
    await sendMessages(short.sqs, short.config.sqs.queueUrl, sampleBodies().slice(0, 3));
    await runIngest(short.client, short.config, optionsFromConfig(short.config.ingest));
    const id = await startRecovery(
      short.client,
      short.config,
      as('alice'),
      request({ selector: { userId: String(SAMPLE[0].user_id) } }),
    );
    expect((await awaitRecovery(short.client, short.config, id)).result).toMatchObject({ status: 'expired' });
    expect((await auditEntriesFor(short.db, id)).map((e) => e.event)).toEqual(['request_received', 'authorised', 'expired']);
    expect(await verifyAuditChain(short.db)).toMatchObject({ ok: true, entries: 3 });
  } finally {
    await short.close();
  }
});

test('the audit trail verifies, and the application cannot delete or edit an entry', async () => {
  expect(await verifyAuditChain(p.db)).toMatchObject({ ok: true });
  await expect(pg.query('DELETE FROM pii_audit_log WHERE id = (SELECT min(id) FROM pii_audit_log)')).rejects.toThrow(
    /permission denied/,
  );
  await expect(pg.query(`UPDATE pii_audit_log SET actor = 'mallory'`)).rejects.toThrow(/permission denied/);
  await expect(pg.query('TRUNCATE pii_audit_log')).rejects.toThrow(/permission denied/);
});

test('the recovery and ingest histories and the logs hold no plaintext IP or device ID, even decoded with the codec', async () => {
  const codec = new EncryptionCodec(p.keyring);
  const runs = [];
  for await (const wf of p.client.workflow.list({ query: `TaskQueue = '${p.config.temporal.taskQueue}'` })) runs.push(wf);
  expect(runs.filter((r) => r.type === 'recoveryWorkflow').length).toBeGreaterThanOrEqual(5);
  for (const run of runs) {
    const events = (await p.client.workflow.getHandle(run.workflowId, run.runId).fetchHistory()).events ?? [];
    expect(findPlaintext([{ where: run.workflowId, value: events }], SAMPLE_PII)).toEqual([]);
    if (run.type !== 'recoveryWorkflow') continue;
    // Decoded with the codec key, the recovery results are still sealed to the requester.
    const decoded = [];
    for (const e of events)
      decoded.push(
        await codec.decode([
          ...(e.activityTaskCompletedEventAttributes?.result?.payloads ?? []),
          ...(e.workflowExecutionCompletedEventAttributes?.result?.payloads ?? []),
        ]),
      );
    expect(findPlaintext([{ where: `${run.workflowId} decoded`, value: decoded }], SAMPLE_PII)).toEqual([]);
  }
  const logs = p.workerOutput.join('');
  expect(logs).toContain('Recovery completed'); // the worker's INFO lines were captured
  expect(logs).toContain('Drained'); // the ingest's own INFO line
  expect(findPlaintext([{ where: 'worker logs', value: logs }], SAMPLE_PII)).toEqual([]);
  // Nor a secret: database passwords, the master key, the codec key.
  const codecKeyFile = JSON.parse(fs.readFileSync(p.env.TEMPORAL_CODEC_KEY_FILE, 'utf8'));
  const secrets = [
    new URL(p.env.DATABASE_URL).password,
    new URL(p.env.DATABASE_OWNER_URL).password,
    p.env.PII_MASTER_KEY,
    ...Object.values(codecKeyFile.keys as Record<string, string>),
  ];
  expect(secrets.every((s) => s.length >= 16)).toBe(true);
  expect(secrets.filter((s) => logs.includes(s) || logs.includes(encodeURIComponent(s)))).toEqual([]);
});
