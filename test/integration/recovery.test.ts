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
import {
  awaitRecovery,
  decide,
  operatorKeyFile,
  recoveryStatus,
  startRecovery,
  type NewRequest,
} from '../../cli/recovery-client';
import { newRecipientKeys } from '../../lib/pii/sealed';
import { sendMessages } from '../../lib/ingest/sqs';
import { findOrInstallTemporalCli } from '../../services/temporal-cli';
import { decisionUpdate, recoveryWorkflow } from '../../workflows/recovery';
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
/** A signed approval as an approver's CLI makes it. */
const signedApproval = (operator: string, requestId: string, recordSetHash: string, decision: 'approve' | 'deny' = 'approve') =>
  sign(
    { type: 'pii-recovery-approval', requestId, operator, decision, recordSetHash, issuedAt: new Date().toISOString() },
    readPrivateKey(operatorKeyFile(p.config, operator)),
  );
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
  await pg?.end();
  await p?.close();
});

test('an approved recovery returns exactly the original IP and device ID, sealed to the requester', async () => {
  const id = await startRecovery(p.client, p.config, as('alice'), request());
  await waitFor(id, 'awaiting_approval');
  expect(await decide(p.client, p.config, as('bob'), id, 'approve')).toMatchObject({
    refused: null,
    status: { state: 'completed' },
  });
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
    ['approved', 'bob'],
  ] as const) {
    const e = entries.find((x) => x.event === event)!;
    const publicKey = registry.byName.get(operator)!.publicKey;
    expect(e.details.keyFingerprint).toBe(keyFingerprint(publicKey));
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
  await decide(p.client, p.config, as('bob'), id, 'approve');
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
  await decide(p.client, p.config, as('bob'), body.requestId, 'deny');
  expect(await first.result()).toMatchObject({ status: 'denied' });
  // The same signed request once more, under its own ID (a reuse policy that allows it).
  expect(await (await start(recoveryWorkflowId(body.requestId))).result()).toMatchObject({ status: 'refused', code: 'replayed' });
  expect(await decryptedFor(body.requestId)).toEqual([]);
});

test('approvals that are unsigned (SDK or Temporal CLI), self-approvals or from non-approvers change nothing', async () => {
  const id = await startRecovery(p.client, p.config, as('carol'), request());
  await waitFor(id, 'awaiting_approval');
  const handle = p.client.workflow.getHandle(recoveryWorkflowId(id));
  expect(await handle.executeUpdate('decision', { args: [{ decision: 'approve' }] })).toMatchObject({
    ok: false,
    code: 'malformed',
  });
  // As an operator would from a shell: the Temporal CLI, with no codec and no key.
  const cli = await findOrInstallTemporalCli({ installDir: path.join(__dirname, '..', '..', '.data', 'bin') });
  const status0 = await recoveryStatus(p.client, id);
  // The update runs; the CLI then cannot print the verdict, which comes back encrypted.
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
    '--input',
    JSON.stringify({
      body: {
        type: 'pii-recovery-approval',
        requestId: id,
        operator: 'bob',
        decision: 'approve',
        recordSetHash: status0.recordSetHash,
        issuedAt: new Date().toISOString(),
      },
    }),
  ]).catch((e) => e);
  expect(String(sent.stderr ?? sent.message)).toMatch(/binary\/encrypted: payload encoding is not supported/);
  expect(await decide(p.client, p.config, as('carol'), id, 'approve')).toMatchObject({
    refused: 'self_approval',
    status: { state: 'awaiting_approval' },
  });
  expect(await decide(p.client, p.config, as('alice'), id, 'approve')).toMatchObject({
    refused: 'not_an_approver',
    status: { state: 'awaiting_approval' },
  });
  const status = await recoveryStatus(p.client, id);
  expect(status.state).toBe('awaiting_approval');
  expect(status.refusedApprovals).toEqual(['malformed', 'unsigned', 'self_approval', 'not_an_approver']);
  expect((await auditEntriesFor(p.db, id)).filter((e) => e.event === 'approval_refused').map((e) => e.details.code)).toEqual(
    status.refusedApprovals,
  );

  // An approval signed for another request does not carry over.
  const other = await startRecovery(p.client, p.config, as('alice'), request());
  const otherStatus = await waitFor(other, 'awaiting_approval');
  const approval = signedApproval('bob', other, otherStatus.recordSetHash!);
  expect(await handle.executeUpdate(decisionUpdate, { args: [approval] })).toMatchObject({ ok: false, code: 'wrong_request' });
  expect(
    await p.client.workflow.getHandle(recoveryWorkflowId(other)).executeUpdate(decisionUpdate, { args: [approval] }),
  ).toMatchObject({ ok: true });
  expect(await awaitRecovery(p.client, p.config, other)).toHaveProperty('records');
  // The same approval again, once it was used: the request no longer takes decisions.
  await expect(
    p.client.workflow.getHandle(recoveryWorkflowId(other)).executeUpdate(decisionUpdate, { args: [approval] }),
  ).rejects.toThrow();

  expect(await decide(p.client, p.config, as('bob'), id, 'deny')).toMatchObject({ refused: null, status: { state: 'denied' } });
  expect((await awaitRecovery(p.client, p.config, id)).result).toMatchObject({ status: 'denied' });
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
