// The recovery against an attacker with access to the namespace and to the application's
// database role: a workflow of their own, on a task queue of their own, scheduling the
// recovery activities directly (with plain payloads, and with payloads encoded by the
// project's own codec, as an operator's CLI or a codec server could make them); a reset
// to after the approval; a selector that grows after the approval; a replayed approval;
// the re-encryption activity scheduled the same way on the ingest task queue, without a
// recorded key rotation and with hostile input; and the database role trying to forge or
// unprotect the audit trail (a rotation record included).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, WorkflowIdReusePolicy } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { Client as PgClient } from 'pg';
import { recoveryWorkflowId } from '../../lib/contract/names';
import { appendAudit, auditEntriesFor, verifyAuditChain } from '../../lib/recovery/audit';
import { EncryptionCodec } from '../../lib/pii/codec';
import { createDb, type Db } from '../../lib/platform/db';
import { checkAuditRole } from '../../recovery-worker';
import { optionsFromConfig, runIngest } from '../../cli/ingest-run';
import { sampleBodies } from '../../lib/ingest/load';
import {
  requestDigest,
  generateOperatorKeys,
  readPrivateKey,
  sign,
  writePrivateKey,
  type RecoveryRequestBody,
  type Role,
} from '../../lib/recovery';
import { operatorKeyFile, recoveryStatus } from '../../cli/recovery-client';
import { newRecipientKeys } from '../../lib/pii/sealed';
import { masterKeyWrapper, rotateKeyring } from '../../lib/pii/keyring';
import { migrate, readMigrations } from '../../lib/platform/migrate';
import { recordedRotation, recordRotation } from '../../lib/pii/reencrypt';
import { sendMessages } from '../../lib/ingest/sqs';
import { dataConverter } from '../../lib/platform/temporal';
import { decisionUpdate, recoveryWorkflow, type RecoveryStatus } from '../../workflows/recovery';
import { attackWorkflow, type Attack, type AttackOutcome } from './attacker/workflows';
import { appendDecision, closeOperatorDb, decide, operatorDb } from './decisions';
import { describeShown, pendingRequests, showRequest } from '../../cli/approval';
import { createRecoveryActivities } from '../../activities/recovery';
import { recordSetHash } from '../../lib/recovery/records';
import { asAppRole, createDatabase, runClient, SAMPLE, startPipeline, testServices, type Pipeline } from './helpers';

let p: Pipeline;
let app: PgClient;
let owner: PgClient;
/** As the recovery worker's role: the one writer of the recovery's own entries. */
let recoveryDb: Db;
let sampleIds: string[];
let plainClient: Client;
let attackerConnection: NativeConnection;
const attackers: { worker: Worker; run: Promise<void> }[] = [];
const queues = { plain: `attacker-plain-${crypto.randomUUID()}`, codec: `attacker-codec-${crypto.randomUUID()}` };

const OPERATORS: Record<string, Role[]> = { alice: ['pii-requester'], bob: ['pii-approver'], dave: ['pii-approver'] };
const key = (name: string) => readPrivateKey(operatorKeyFile(p.config, name));

function requestBody(overrides: Partial<RecoveryRequestBody> = {}): RecoveryRequestBody {
  return {
    type: 'pii-recovery-request',
    requestId: crypto.randomUUID(),
    operator: 'alice',
    reason: 'Customer reported account takeover; confirm the login IPs.',
    ticket: 'SEC-77',
    selector: { messageIds: [sampleIds[0], sampleIds[1]] },
    fields: ['ip', 'device_id'],
    recipientPublicKey: newRecipientKeys().publicKey,
    issuedAt: new Date().toISOString(),
    ...overrides,
  };
}
const approvalOf = (requestId: string, recordSetHash: string, operator = 'bob') =>
  sign(
    {
      type: 'pii-recovery-approval' as const,
      requestId,
      operator,
      decision: 'approve' as const,
      recordSetHash,
      issuedAt: new Date().toISOString(),
    },
    key(operator),
  );

async function waitForState(requestId: string, state: string): Promise<RecoveryStatus> {
  for (let i = 0; i < 100; i++) {
    const s = await recoveryStatus(p.client, requestId).catch(() => null);
    if (s?.state === state) return s;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`request ${requestId} never reached ${state}`);
}

/** A legitimate request, started as the CLI starts it; resolves when it awaits approval. */
async function startLegit(overrides: Partial<RecoveryRequestBody> = {}) {
  const body = requestBody(overrides);
  const signed = sign(body, key('alice'));
  const handle = await p.client.workflow.start(recoveryWorkflow, {
    workflowId: recoveryWorkflowId(body.requestId),
    taskQueue: p.config.temporal.taskQueue,
    args: [signed, { activityTaskQueue: p.config.temporal.recoveryTaskQueue }],
  });
  const status = await waitForState(body.requestId, 'awaiting_approval');
  return { body, signed, handle, status };
}

/** A completed legitimate recovery: its signed request and approval are what an attacker could capture. */
async function completedLegit() {
  const legit = await startLegit();
  expect(await decide(p, 'bob', legit.body.requestId, 'approve')).toMatchObject({ counted: true });
  expect(await legit.handle.result()).toMatchObject({ status: 'completed', records: 2 });
  const entry = (await auditEntriesFor(p.db, legit.body.requestId)).find((e) => e.event === 'decision_signed')!;
  return { ...legit, approval: { body: entry.details.document, signature: entry.details.signature } };
}

/** What the trail says was read for a request: grant consumptions, records read, completions. */
const reads = async (requestId: string) =>
  (await auditEntriesFor(p.db, requestId))
    .filter((e) => ['grant_consumed', 'record_read', 'completed'].includes(e.event))
    .map((e) => e.event);

/**
 * Runs the attacker's workflow on its own task queue: `plain` payloads (no codec) or
 * `codec` (the project's codec keys). A plain attacker cannot even read the failure it gets
 * back (encrypted by the recovery worker), so its workflow would stall: its outcome is read
 * from the history instead (the failure decoded with the codec key), and the run ended.
 */
async function attack(
  via: 'plain' | 'codec',
  activity: string,
  args: unknown[],
  workflowId = `attack-${crypto.randomUUID()}`,
  taskQueue = p.config.temporal.recoveryTaskQueue,
): Promise<AttackOutcome> {
  const input: Attack = { taskQueue, activity, args };
  const options = {
    workflowId,
    taskQueue: queues[via],
    args: [input] as [Attack],
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
  };
  if (via === 'codec') return p.client.workflow.execute(attackWorkflow, options);
  const handle = await plainClient.workflow.start(attackWorkflow, options);
  try {
    for (let i = 0; i < 150; i++) {
      const events = (await handle.fetchHistory()).events ?? [];
      const done = events.find(
        (e) =>
          e.activityTaskFailedEventAttributes || e.activityTaskCompletedEventAttributes || e.activityTaskTimedOutEventAttributes,
      );
      if (done?.activityTaskCompletedEventAttributes) return { ok: true, result: 'completed' };
      if (done?.activityTaskTimedOutEventAttributes) return { ok: false, error: 'timed out' };
      if (done) {
        const failure = done.activityTaskFailedEventAttributes!.failure!;
        const [attrs] = await new EncryptionCodec(p.keyring).decode([failure.encodedAttributes!]);
        return {
          ok: false,
          error: String(JSON.parse(Buffer.from(attrs.data!).toString('utf8')).message),
          type: failure.applicationFailureInfo?.type ?? undefined,
        };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`attack ${workflowId}: no activity outcome in the history`);
  } finally {
    await handle.terminate('attack observed').catch(() => {});
  }
}

beforeAll(async () => {
  p = await startPipeline('attacks', { PII_RECOVERY_MAX_RECORDS: '5', PII_RECOVERY_APPROVAL_TIMEOUT_SECONDS: '120' });
  const lines: string[] = [];
  for (const [name, roles] of Object.entries(OPERATORS)) {
    const keys = generateOperatorKeys(name, roles);
    writePrivateKey(operatorKeyFile(p.config, name), keys.privateKeyPem);
    lines.push(keys.registryLine);
  }
  fs.writeFileSync(p.config.recovery.operatorsFile, lines.join('\n') + '\n');
  recoveryDb = createDb(p.config.recoveryDatabaseUrl);
  app = new PgClient({ connectionString: p.config.databaseUrl });
  owner = new PgClient({ connectionString: p.ownerDatabaseUrl });
  await app.connect();
  await owner.connect();
  sampleIds = await sendMessages(p.sqs, p.config.sqs.queueUrl, sampleBodies());
  await runIngest(p.client, p.config, optionsFromConfig(p.config.ingest));

  // The attacker's own workers: the same workflow code, one without a codec, one with ours.
  attackerConnection = await NativeConnection.connect({ address: testServices().temporalAddress });
  const bundle: WorkflowBundleWithSourceMap = await bundleWorkflowCode({
    workflowsPath: require.resolve('./attacker/workflows'),
    logger: { info() {}, warn() {}, error() {}, debug() {}, trace() {}, log() {} },
  });
  for (const via of ['plain', 'codec'] as const) {
    const worker = await Worker.create({
      connection: attackerConnection,
      taskQueue: queues[via],
      workflowBundle: bundle,
      ...(via === 'codec' ? { dataConverter: dataConverter(p.keyring) } : {}),
    });
    attackers.push({ worker, run: worker.run() });
  }
  plainClient = new Client({ connection: await Connection.connect({ address: testServices().temporalAddress }) });
});

afterAll(async () => {
  for (const a of attackers) a.worker.shutdown();
  await Promise.all(attackers.map((a) => a.run));
  await attackerConnection?.close();
  await plainClient?.connection.close();
  await app?.end();
  await owner?.end();
  if (p) await closeOperatorDb(p);
  await recoveryDb?.$disconnect();
  await p?.close();
});

describe('a foreign workflow scheduling the recovery activities directly', () => {
  test("the decrypting activity, with an unsigned request in another operator's name: nothing decrypted, nothing written in her name", async () => {
    const body = requestBody();
    for (const via of ['plain', 'codec'] as const) {
      const outcome = await attack(
        via,
        'recoverRecords',
        [{ signedRequest: { body }, signedApproval: null }],
        recoveryWorkflowId(body.requestId),
      );
      expect(outcome.ok).toBe(false);
      if (via === 'plain') expect(outcome.error).toMatch(/unencrypted payload/);
      // The activity reads the request from the trail, not from its input: there is none for this ID.
      else expect(outcome).toMatchObject({ type: 'not_authorised', error: expect.stringMatching(/trail holds no request/) });
    }
    expect(await reads(body.requestId)).toEqual([]);
    expect((await auditEntriesFor(p.db, body.requestId)).filter((e) => e.actor === 'alice')).toEqual([]);
  });

  test('with a captured signed request and approval: from its own workflow, or one reusing the ID of the finished run, nothing more is decrypted', async () => {
    const legit = await completedLegit();
    const before = await reads(legit.body.requestId);
    expect(before).toEqual(['grant_consumed', 'record_read', 'record_read', 'completed']);
    const input = { signedRequest: legit.signed, signedApproval: legit.approval };
    expect(await attack('codec', 'recoverRecords', [input])).toMatchObject({ ok: false, type: 'not_a_recovery' });
    expect(await attack('codec', 'recoverRecords', [input], recoveryWorkflowId(legit.body.requestId))).toMatchObject({
      ok: false,
      type: 'grant_consumed',
    });
    expect((await attack('plain', 'recoverRecords', [input], recoveryWorkflowId(legit.body.requestId))).error).toMatch(
      /unencrypted payload/,
    );
    expect(await reads(legit.body.requestId)).toEqual(before);
  });

  test('with a signed request that was never authorised (its own ID, no approval step): refused', async () => {
    const body = requestBody();
    const signed = sign(body, key('alice'));
    const forgedApproval = approvalOf(body.requestId, 'f'.repeat(64));
    // Handed to the decrypting activity as input, as the activity once took them: it reads the trail instead.
    const outcome = await attack(
      'codec',
      'recoverRecords',
      [{ signedRequest: signed, signedApproval: forgedApproval }],
      recoveryWorkflowId(body.requestId),
    );
    expect(outcome).toMatchObject({ ok: false, type: 'not_authorised' });
    expect(await reads(body.requestId)).toEqual([]);
  });

  test('the other recovery activities: authorise, judge approvals, expire, and the old recordDecision door', async () => {
    const legit = await completedLegit();
    const id = legit.body.requestId;
    // A replayed request under the finished run's own workflow ID.
    expect(await attack('codec', 'authoriseRequest', [legit.signed], recoveryWorkflowId(id))).toMatchObject({
      ok: true,
      result: { ok: false, code: 'replayed' },
    });
    // Judging decisions for nobody's request: refused; for the finished one, the trail's decision again, written once.
    expect(await attack('codec', 'judgeDecision', [legit.approval])).toMatchObject({ ok: false, type: 'not_a_recovery' });
    expect(await attack('codec', 'judgeDecision', [], recoveryWorkflowId(id))).toMatchObject({
      ok: true,
      result: { decided: true, decision: 'approve', approver: 'bob' },
    });
    expect(await attack('codec', 'expireRequest', [])).toMatchObject({ ok: false, type: 'not_a_recovery' });
    // Under the finished run's ID: the trail's decision, nothing expired.
    expect(await attack('codec', 'expireRequest', [], recoveryWorkflowId(id))).toMatchObject({
      ok: true,
      result: { expired: false, verdict: { decided: true, decision: 'approve' } },
    });
    expect(
      (await attack('codec', 'recordDecision', [{ requestId: id, event: 'approved', actor: 'bob', details: {} }])).error,
    ).toMatch(/not registered|recordDecision/);
    // The ingest task queue (where the original attack scheduled them) runs no recovery activity at all.
    for (const activity of ['recoverRecords', 'authoriseRequest', 'judgeDecision']) {
      expect((await attack('codec', activity, [legit.signed], undefined, p.config.temporal.taskQueue)).error).toMatch(
        /not registered/,
      );
    }
    for (const activity of ['authoriseRequest', 'judgeDecision', 'recoverRecords', 'expireRequest']) {
      expect((await attack('plain', activity, [legit.signed])).error).toMatch(/unencrypted payload/);
    }
    const events = (await auditEntriesFor(p.db, id)).map((e) => e.event);
    expect(events.filter((e) => ['approved', 'denied', 'expired'].includes(e))).toEqual(['approved']);
    expect(await reads(id)).toEqual(['grant_consumed', 'record_read', 'record_read', 'completed']);
  });

  test('lone surrogates and hostile keys in a claimed request: recorded as unknown, stored safely, the chain still verifies', async () => {
    const hostile = {
      body: {
        requestId: '\ud800' + crypto.randomUUID().slice(1),
        operator: 'alice\udc00',
        ['k\ud800ey']: '\udfff',
        ['__proto__']: { x: 1 },
      },
      signature: 'A'.repeat(88),
    };
    const outcome = await attack('codec', 'authoriseRequest', [hostile]);
    expect(outcome).toMatchObject({ ok: true, result: { ok: false, requestId: 'unknown', code: 'malformed' } });
    const check = await verifyAuditChain(p.db);
    expect(check).toMatchObject({ ok: true });
    const unknown = await auditEntriesFor(p.db, 'unknown');
    expect(unknown.length).toBeGreaterThanOrEqual(2);
    // Written straight through the append function too: whatever the details, stored and hashed as stored.
    const [stored] = await appendAudit(recoveryDb, [
      {
        requestId: 'not-a-uuid\ud800',
        event: 'request_refused',
        actor: 'x\udc00',
        details: { ['\ud800']: '\u0000\udfff', nested: [{ ['a\udc00']: 1 }] },
      },
    ]);
    expect(stored).toMatchObject({ requestId: 'unknown', actor: null });
    expect(await verifyAuditChain(p.db)).toMatchObject({ ok: true });
  });
});

test('a reset of the recovery to after the approval decrypts nothing more', async () => {
  const legit = await completedLegit();
  const id = legit.body.requestId;
  const before = await reads(id);
  const runId = (await legit.handle.describe()).runId;
  const events = (await p.client.workflow.getHandle(recoveryWorkflowId(id), runId).fetchHistory()).events ?? [];
  // The last workflow task completed before recoverRecords was scheduled: the approval is in the history up to there.
  const scheduled = events.findIndex((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'recoverRecords');
  const resetPoint = events
    .slice(0, scheduled)
    .reverse()
    .find((e) => e.workflowTaskCompletedEventAttributes);
  expect(resetPoint).toBeDefined();
  const { runId: resetRunId } = await p.client.workflowService.resetWorkflowExecution({
    namespace: p.config.temporal.namespace,
    workflowExecution: { workflowId: recoveryWorkflowId(id), runId },
    workflowTaskFinishEventId: resetPoint!.eventId,
    requestId: crypto.randomUUID(),
    reason: 'attack: decrypt again',
  });
  const again = await p.client.workflow.getHandle(recoveryWorkflowId(id), resetRunId).result();
  expect(again).toMatchObject({ status: 'refused', code: 'grant_consumed' });
  expect(await reads(id)).toEqual(before);
});

test('a selector that grows after authorisation: the approver approves, and gets, the frozen record set only', async () => {
  const userId = String(SAMPLE[0].user_id);
  const legit = await startLegit({ selector: { userId } });
  const frozen = legit.status.recordSet!.map((r) => r.messageId);
  expect(frozen.length).toBeGreaterThan(0);
  // A new login of the same user arrives while the request waits.
  const [late] = await sendMessages(p.sqs, p.config.sqs.queueUrl, [JSON.stringify({ ...SAMPLE[0], app_version: '9.9.9' })]);
  await runIngest(p.client, p.config, optionsFromConfig(p.config.ingest));
  expect((await app.query('SELECT count(*)::int AS n FROM user_logins WHERE user_id = $1', [userId])).rows[0].n).toBe(
    frozen.length + 1,
  );
  expect(await decide(p, 'bob', legit.body.requestId, 'approve')).toMatchObject({ counted: true });
  const result = await legit.handle.result();
  expect(result).toMatchObject({ status: 'completed', records: frozen.length });
  const read = (await auditEntriesFor(p.db, legit.body.requestId))
    .filter((e) => e.event === 'record_read')
    .map((e) => e.details.messageId);
  expect(read.sort()).toEqual([...frozen].sort());
  expect(read).not.toContain(late);
});

test('an approval of another record set, or of another request, does not count', async () => {
  const first = await startLegit();
  const second = await startLegit();
  const id = first.body.requestId;
  // Signed over the second request's digest and record set, appended to the first's trail.
  await appendDecision(p, 'bob', {
    requestId: id,
    decision: 'approve',
    requestDigest: second.status.requestDigest!,
    recordSetHash: first.status.recordSetHash!,
  });
  expect(await first.handle.executeUpdate(decisionUpdate)).toMatchObject({ decided: false, code: 'wrong_request_digest' });
  await appendDecision(p, 'bob', {
    requestId: id,
    decision: 'approve',
    requestDigest: first.status.requestDigest!,
    recordSetHash: 'a'.repeat(64),
  });
  expect(await first.handle.executeUpdate(decisionUpdate)).toMatchObject({ decided: false, code: 'wrong_record_set' });
  expect(await reads(id)).toEqual([]);
  await first.handle.terminate('test over');
  await second.handle.terminate('test over');
});

test('a database error that retrying cannot fix fails the recovery at once instead of retrying without end', async () => {
  await owner.query('REVOKE SELECT ON user_logins FROM login_ingest_recovery');
  try {
    const body = requestBody();
    const started = Date.now();
    const handle = await p.client.workflow.start(recoveryWorkflow, {
      workflowId: recoveryWorkflowId(body.requestId),
      taskQueue: p.config.temporal.taskQueue,
      args: [sign(body, key('alice')), { activityTaskQueue: p.config.temporal.recoveryTaskQueue }],
    });
    const failure = await handle.result().catch((e) => e);
    expect(String(failure?.cause?.cause?.message ?? failure)).toMatch(/SQLSTATE 42501.*retrying cannot fix/);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await reads(body.requestId)).toEqual([]);
  } finally {
    await owner.query('GRANT SELECT ON user_logins TO login_ingest_recovery');
  }
});

describe('a foreign workflow scheduling reencryptPage on the ingest task queue', () => {
  const rotateUnrecorded = () => rotateKeyring(p.config.keys.keyringFile!, masterKeyWrapper(p.config)); // the key file alone, as by hand
  const reencryptAttack = (via: 'plain' | 'codec', input: unknown) =>
    attack(via, 'reencryptPage', [input], undefined, p.config.temporal.taskQueue);
  const page = (table = 'user_logins', limit = 1000) => ({ table, afterId: '0', limit });
  /** Every stored ciphertext with its key, and the trail's length: what a page would change. */
  const stored = async () => ({
    pii: (
      await app.query(`SELECT 'user_logins' AS t, id::text, pii_key_id, md5(ip_ciphertext || device_id_ciphertext) AS c FROM user_logins
                       UNION ALL SELECT 'quarantine', id::text, pii_key_id, md5(body_ciphertext) FROM quarantine ORDER BY 1, 2`)
    ).rows,
    auditEntries: (await app.query('SELECT count(*)::int AS n FROM pii_audit_log')).rows[0].n,
  });

  test('with no rotation recorded by the owner (a key file rotated by hand, a record the application role tries to forge): refused, nothing read or written', async () => {
    const unrecorded = await rotateUnrecorded();
    const before = await stored();
    expect(before.pii.filter((r) => r.pii_key_id !== unrecorded.newKeyId).length).toBeGreaterThan(10); // work a page would do
    for (const via of ['plain', 'codec'] as const) {
      for (const table of ['user_logins', 'quarantine']) {
        expect(await reencryptAttack(via, page(table))).toMatchObject({
          ok: false,
          type: 'no_recorded_rotation',
          error: expect.stringMatching(/no key rotation is recorded/),
        });
      }
    }
    // The application's role cannot write the record, through the function or the library.
    const forged = { newKeyId: unrecorded.newKeyId, previousKeyId: unrecorded.previousKeyId };
    await expect(
      app.query(`SELECT * FROM pii_audit_append($1, 'keys_rotated', null, $2)`, [crypto.randomUUID(), JSON.stringify(forged)]),
    ).rejects.toThrow(/owner role only/);
    await expect(
      appendAudit(p.db, [{ requestId: crypto.randomUUID(), event: 'keys_rotated', actor: null, details: forged }]),
    ).rejects.toThrow(/owner role only/);
    expect(await reencryptAttack('codec', page())).toMatchObject({ ok: false, type: 'no_recorded_rotation' });
    expect(await stored()).toEqual(before);
  });

  test('with a rotation recorded: hostile input and workers whose key is not the recorded one are refused unchanged; the page moves rows to the recorded key, returns counts and a cursor', async () => {
    const recorded = /→ (k-\S+) .*recorded in the audit trail/.exec(
      (await runClient(p, ['keys', 'rotate', '--no-reencrypt'])).stdout,
    )![1];
    const before = await stored();
    expect(before.pii.filter((r) => r.pii_key_id !== recorded).length).toBeGreaterThan(10);
    const hostile: [unknown, RegExp][] = [
      [page('quarantine_x'), /table: must be one of user_logins, quarantine/],
      [page('pii_audit_log'), /table: must be one of/],
      [page('user_logins; DROP TABLE user_logins'), /table: must be one of/],
      ...['-1', '0x10', ' 7', '1e3', 'abc', '', '007'].map((afterId): [unknown, RegExp] => [
        { ...page(), afterId },
        /afterId: must be a row ID in decimal digits/,
      ]),
      [{ ...page(), afterId: '9223372036854775808' }, /afterId: must be at most 2\^63-1/],
      [{ ...page(), afterId: 7 }, /afterId: must be a string/],
      [{ ...page(), limit: 0 }, /limit: must be at least 1/],
      [{ ...page(), limit: -5 }, /limit: must be at least 1/],
      [{ ...page(), limit: 1_000_000_000 }, /limit: must be at most 1000/],
      [{ ...page(), limit: 1.5 }, /limit: must be a whole number/],
      [{ ...page(), limit: '10' }, /limit: must be a number/],
      [{ table: 'user_logins', afterId: '0' }, /limit: must be a number/],
      [{ ...page(), keyId: 'k-attacker' }, /[Uu]nrecognized key.*keyId/],
      ['user_logins', /input: .*object/],
      [null, /input: .*object/],
    ];
    for (const [input, message] of hostile) {
      const outcome = await reencryptAttack('codec', input);
      expect({ input, ...outcome }).toMatchObject({ input, ok: false, type: 'bad_input', error: expect.stringMatching(message) });
    }
    expect(await reencryptAttack('plain', { ...page(), limit: 1_000_000_000 })).toMatchObject({ ok: false, type: 'bad_input' });
    expect(await stored()).toEqual(before);

    // A worker whose key file has a key active that no rotation recorded (the recorded one is older).
    await rotateUnrecorded();
    expect(await reencryptAttack('codec', page())).toMatchObject({
      ok: false,
      type: 'key_not_recorded',
      error: expect.stringMatching(/data moves only to a recorded key/),
    });
    // A worker whose key file lags behind the record (its active key is an older one): it would move rows back to that key.
    await owner.query(`SELECT * FROM pii_audit_append($1, 'keys_rotated', null, $2)`, [
      crypto.randomUUID(),
      JSON.stringify({ newKeyId: 'k-20990101-000000', previousKeyId: recorded }),
    ]);
    expect(await reencryptAttack('codec', page())).toMatchObject({ ok: false, type: 'key_file_behind' });
    expect((await stored()).pii).toEqual(before.pii);

    // Recorded by the owner, a page runs (the work the key holder ordered); it returns the count and the cursor, nothing else.
    const latest = /→ (k-\S+) .*recorded in the audit trail/.exec(
      (await runClient(p, ['keys', 'rotate', '--no-reencrypt'])).stdout,
    )![1];
    const two = await reencryptAttack('codec', page('user_logins', 2));
    expect(two).toEqual({ ok: true, result: { reencrypted: 2, skipped: 0, lastId: expect.stringMatching(/^[1-9][0-9]*$/) } });
    expect((await stored()).pii.filter((r) => r.pii_key_id === latest).map((r) => r.t)).toEqual(['user_logins', 'user_logins']);
    // The legitimate path: keys rotate, then the re-encryption workflow, moves everything to the recorded key.
    const out = (await runClient(p, ['keys', 'rotate'])).stdout;
    const final = /→ (k-\S+) .*recorded in the audit trail/.exec(out)![1];
    const count = (t: string) => before.pii.filter((r) => r.t === t).length;
    expect(out).toMatch(
      new RegExp(
        `Re-encrypted ${count('user_logins')} row\\(s\\) and ${count('quarantine')} quarantine bod\\(ies\\) to key ${final}`,
      ),
    );
    const after = await stored();
    expect(after.pii.map((r) => [r.t, r.id])).toEqual(before.pii.map((r) => [r.t, r.id]));
    expect(new Set(after.pii.map((r) => r.pii_key_id))).toEqual(new Set([final]));
    expect(await reencryptAttack('codec', page())).toEqual({ ok: true, result: { reencrypted: 0, skipped: 0, lastId: null } });
  });
});

describe("the application's database role and the audit trail", () => {
  test('cannot write, forge, or unprotect the table; appends only through the function, which chooses id, prev_hash and hash', async () => {
    const [last] = (await app.query('SELECT id, hash FROM pii_audit_log ORDER BY id DESC LIMIT 1')).rows;
    const forged = `INSERT INTO pii_audit_log (id, at, request_id, event, actor, details, prev_hash, hash) VALUES (${Number(last.id) + 1}, now(), '${crypto.randomUUID()}', 'approved', 'bob', '{}', '${last.hash}', '${'e'.repeat(64)}')`;
    await expect(app.query(forged)).rejects.toThrow(/permission denied/);
    await expect(app.query('ALTER TABLE pii_audit_log DISABLE TRIGGER ALL')).rejects.toThrow(/must be owner/);
    await expect(app.query('DROP TRIGGER pii_audit_log_no_update_delete ON pii_audit_log')).rejects.toThrow(/must be owner/);
    await expect(app.query('DROP INDEX pii_audit_log_hash_key')).rejects.toThrow(/must be owner/);
    await expect(app.query(`UPDATE pii_audit_log SET actor = 'mallory'`)).rejects.toThrow(/permission denied/);
    await expect(app.query(`SELECT nextval('pii_audit_log_id_seq')`)).rejects.toThrow(/permission denied/);
    await expect(
      app.query(
        `CREATE OR REPLACE FUNCTION pii_audit_append(p_request_id text, p_event text, p_actor text, p_details jsonb) RETURNS TABLE (id bigint, at timestamptz, prev_hash text, hash text) LANGUAGE sql AS $$ SELECT 1::bigint, now(), '', '' $$`,
      ),
    ).rejects.toThrow(/must be owner|permission denied/);
    await expect(app.query(`SELECT * FROM pii_audit_append('not-a-uuid', 'approved', null, '{}')`)).rejects.toThrow(
      /request_id must be a lower-case UUID or unknown/,
    );
    // Nor can it append the recovery's entries (migration 0006).
    await expect(
      app.query(`SELECT * FROM pii_audit_append($1, 'request_refused', null, '{"code": "test"}')`, [crypto.randomUUID()]),
    ).rejects.toThrow(/written by login_ingest_recovery only/);
    // The function has no parameter for id, time, prev_hash or hash: what it appends chains.
    const [appended] = await appendAudit(recoveryDb, [
      { requestId: crypto.randomUUID(), event: 'request_refused', actor: null, details: { code: 'test' } },
    ]);
    expect(appended.prevHash).toBe(last.hash);
    expect(await verifyAuditChain(p.db)).toMatchObject({ ok: true });
    // The owner, who can, is not the application: the triggers and grants are its to change.
    expect((await owner.query(`SELECT tableowner FROM pg_tables WHERE tablename = 'pii_audit_log'`)).rows[0].tableowner).toBe(
      'login_ingest_owner',
    );
    expect((await app.query('SELECT current_user AS u')).rows[0].u).toBe('login_ingest_app');
  });

  test('a key rotation record the application role wrote before migration 0005 counts for nothing; after it, only the owner can write one', async () => {
    const before0005 = fs.mkdtempSync(path.join(os.tmpdir(), 'migrations-'));
    for (const m of readMigrations().filter((m) => m.name < '0005')) {
      fs.mkdirSync(path.join(before0005, m.name));
      fs.writeFileSync(path.join(before0005, m.name, 'migration.sql'), m.sql);
    }
    const ownerUrl = await createDatabase(`rotation_records_${Date.now()}`);
    await migrate(ownerUrl, () => {}, before0005);
    const appDb = createDb(asAppRole(ownerUrl));
    const ownerDb = createDb(ownerUrl);
    try {
      await appendAudit(appDb, [
        {
          requestId: crypto.randomUUID(),
          event: 'keys_rotated',
          actor: null,
          details: { newKeyId: 'k-forged', previousKeyId: 'k-x' },
        },
      ]);
      await migrate(ownerUrl, () => {});
      expect(await recordedRotation(appDb)).toBeNull();
      await expect(
        appendAudit(appDb, [
          { requestId: crypto.randomUUID(), event: 'keys_rotated', actor: null, details: { newKeyId: 'k-forged' } },
        ]),
      ).rejects.toThrow(/owner role only/);
      await recordRotation(ownerDb, { newKeyId: 'k-real', previousKeyId: 'k-x' });
      expect(await recordedRotation(appDb)).toMatchObject({ newKeyId: 'k-real' });
      expect(await verifyAuditChain(appDb)).toMatchObject({ ok: true, entries: 2 });
    } finally {
      await appDb.$disconnect();
      await ownerDb.$disconnect();
      fs.rmSync(before0005, { recursive: true, force: true });
    }
  });

  test('a worker in production refuses to run as a role that owns the trail; the application role passes', async () => {
    const asOwner = createDb(p.ownerDatabaseUrl);
    try {
      await expect(checkAuditRole(asOwner, true)).rejects.toThrow(/connects as login_ingest_owner, which owns pii_audit_log/);
      const warnings: string[] = [];
      await checkAuditRole(asOwner, false, (m) => warnings.push(m));
      expect(warnings).toHaveLength(1);
    } finally {
      await asOwner.$disconnect();
    }
    await expect(checkAuditRole(p.db, true)).resolves.toBeUndefined();
  });

  test('audit verify reports every broken entry, not only the first', async () => {
    const ids = (await app.query('SELECT id FROM pii_audit_log ORDER BY id')).rows.map((r) => String(r.id));
    expect(ids.length).toBeGreaterThan(6);
    const [a, b] = [ids[2], ids[ids.length - 2]];
    // Tampering takes the owner switching the append-only triggers off.
    await owner.query(`ALTER TABLE pii_audit_log DISABLE TRIGGER USER;
      UPDATE pii_audit_log SET actor = 'mallory' WHERE id = ${a};
      DELETE FROM pii_audit_log WHERE id = ${b};
      ALTER TABLE pii_audit_log ENABLE TRIGGER USER`);
    const result = await verifyAuditChain(p.db);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.breaks.map((x) => [x.id, /match its hash/.test(x.problem) ? 'edited' : 'gap'])).toEqual([
      [a, 'edited'],
      [ids[ids.length - 1], 'gap'],
    ]);
  });
});

describe("the requester alone, with an operator's means (issue 18): namespace, codec key, the CLI's database role, a worker of their own", () => {
  /** The requester's own `recoveryWorkflow` under the real workflow ID, on the requester's worker (attacker/workflows.ts). */
  async function startImpostor(body: RecoveryRequestBody, lie: Record<string, unknown>, authorise = true) {
    const handle = await p.client.workflow.start('recoveryWorkflow', {
      workflowId: recoveryWorkflowId(body.requestId),
      taskQueue: queues.codec,
      args: [sign(body, key('alice')), { activityTaskQueue: p.config.temporal.recoveryTaskQueue, authorise, lie }],
    });
    if (authorise)
      for (let i = 0; i < 100 && !(await auditEntriesFor(p.db, body.requestId)).some((e) => e.event === 'authorised'); i++)
        await new Promise((r) => setTimeout(r, 100));
    return handle;
  }
  /** Tells the impostor to call the decrypting activity, and returns what it got. */
  async function goDecrypt(handle: Awaited<ReturnType<typeof startImpostor>>): Promise<AttackOutcome> {
    await handle.signal('go');
    return (await handle.result()) as AttackOutcome;
  }

  test('a lying recoveryWorkflow: the approver is shown the signed request, sees the lie as an attack and signs nothing; nothing is decrypted', async () => {
    const body = requestBody({ reason: 'curious about this user', ticket: 'X-1' });
    const handle = await startImpostor(body, { requester: 'dave', reason: 'Court order 2026/117', ticket: 'LEGAL-117' });
    expect(await recoveryStatus(p.client, body.requestId)).toMatchObject({ requester: 'dave', ticket: 'LEGAL-117' });
    const shown = await showRequest(operatorDb(p), p.client, p.config, body.requestId);
    if (!shown.ok) throw new Error(shown.problem);
    expect(shown.shown.trail.request).toMatchObject({ operator: 'alice', reason: 'curious about this user', ticket: 'X-1' });
    expect(shown.shown.contradictions.join('\n')).toMatch(/requester: the workflow says "dave", the signed request "alice"/);
    expect(describeShown(shown.shown)).toMatch(/ATTACK/);
    expect(await decide(p, 'bob', body.requestId, 'approve')).toMatchObject({
      counted: false,
      refused: expect.stringMatching(/^cli:ATTACK/),
    });
    const listed = await pendingRequests(operatorDb(p), p.client, p.config);
    expect(listed.pending.find((r) => r.requestId === body.requestId)?.contradictions.length).toBeGreaterThan(0);
    expect(await goDecrypt(handle)).toMatchObject({ ok: false, type: 'not_authorised' });
    expect(await reads(body.requestId)).toEqual([]);
  });

  test('a denial the workflow drops still reaches the trail and is final: a second approver approving after it decrypts nothing', async () => {
    const body = requestBody();
    const handle = await startImpostor(body, {});
    const denied = await decide(p, 'bob', body.requestId, 'deny', { wait: false });
    expect(denied).toMatchObject({ counted: true });
    // The CLI refuses to approve a denied request; an approval appended anyway does not count.
    expect(await decide(p, 'dave', body.requestId, 'approve')).toMatchObject({
      counted: false,
      refused: expect.stringMatching(/denied/),
    });
    const shown = await showRequest(operatorDb(p), null, p.config, body.requestId);
    if (!shown.ok) throw new Error(shown.problem);
    await appendDecision(p, 'dave', {
      requestId: body.requestId,
      decision: 'approve',
      requestDigest: shown.shown.trail.digest,
      recordSetHash: shown.shown.trail.authorised!.recordSetHash,
    });
    expect(await goDecrypt(handle)).toMatchObject({ ok: false, type: 'denied' });
    expect(await reads(body.requestId)).toEqual([]);
  });

  test("the requester's and the ingest worker's roles cannot append the recovery's entries; the recovery role cannot append decisions", async () => {
    const id = crypto.randomUUID();
    const ingestDb = p.db;
    for (const [db, role] of [
      [operatorDb(p), 'login_ingest_operator'],
      [ingestDb, 'login_ingest_app'],
    ] as const) {
      for (const event of ['request_received', 'authorised', 'grant_consumed', 'record_read', 'approved'] as const)
        await expect(appendAudit(db, [{ requestId: id, event, actor: 'alice', details: {} }])).rejects.toThrow(
          new RegExp(`${event} entries are written by login_ingest_recovery only, and the login ${role} is not it`),
        );
    }
    await expect(appendAudit(ingestDb, [{ requestId: id, event: 'decision_signed', actor: 'bob', details: {} }])).rejects.toThrow(
      /written by login_ingest_operator only/,
    );
    await expect(
      appendAudit(recoveryDb, [{ requestId: id, event: 'decision_signed', actor: 'bob', details: {} }]),
    ).rejects.toThrow(/written by login_ingest_operator only/);
    await expect(appendAudit(recoveryDb, [{ requestId: id, event: 'keys_rotated', actor: null, details: {} }])).rejects.toThrow(
      /owner role only/,
    );
    // A login holding two writer roles speaks for neither.
    const both = `two_writers_${crypto.randomBytes(3).toString('hex')}`;
    const admin = new PgClient({ connectionString: testServices().adminDatabaseUrl });
    await admin.connect();
    await admin.query(`CREATE ROLE ${both} LOGIN PASSWORD 'pw-${both}' IN ROLE login_ingest_recovery, login_ingest_operator`);
    const bothUrl = new URL(p.ownerDatabaseUrl);
    bothUrl.username = both;
    bothUrl.password = `pw-${both}`;
    const bothDb = createDb(bothUrl.toString());
    try {
      await expect(appendAudit(bothDb, [{ requestId: id, event: 'authorised', actor: null, details: {} }])).rejects.toThrow(
        /holds more than one writer role/,
      );
    } finally {
      await bothDb.$disconnect();
      await admin.query(`DROP ROLE ${both}`);
      await admin.end();
    }
    expect(await auditEntriesFor(p.db, id)).toEqual([]);
  });

  test('a record set over the limit or naming other users, written where only the owner could: the decrypting activity refuses it', async () => {
    const others = (
      await owner.query<{ message_id: string; user_id: string }>('SELECT message_id, user_id FROM user_logins ORDER BY id')
    ).rows;
    const victim = others[0].user_id;
    const cases: { selector: RecoveryRequestBody['selector']; rows: typeof others; code: string }[] = [
      { selector: { userId: victim }, rows: others.slice(0, 30), code: 'forged' }, // 30 > the limit of 5
      { selector: { userId: victim }, rows: others.filter((r) => r.user_id !== victim).slice(0, 3), code: 'forged' }, // within the limit, other users
    ];
    for (const c of cases) {
      const body = requestBody({ selector: c.selector });
      const signed = sign(body, key('alice'));
      const records = c.rows.map((r) => ({ table: 'user_logins' as const, messageId: r.message_id }));
      const hash = recordSetHash({ requestId: body.requestId, selector: body.selector, fields: body.fields, records });
      const append = (event: string, details: object) =>
        owner.query(`SELECT * FROM pii_audit_append($1, $2, 'alice', $3)`, [body.requestId, event, JSON.stringify(details)]);
      await append('request_received', { document: signed.body, signature: signed.signature });
      await append('authorised', {
        records,
        recordSetHash: hash,
        expiresAt: new Date(Date.now() + 60_000).toISOString(),
      });
      await appendDecision(p, 'bob', {
        requestId: body.requestId,
        decision: 'approve',
        requestDigest: requestDigest(body),
        recordSetHash: hash,
      });
      const handle = await startImpostor(body, {}, false);
      expect(await goDecrypt(handle)).toMatchObject({ ok: false, type: c.code });
      expect(await reads(body.requestId)).toEqual([]);
    }
  });

  test('an approval and a denial arriving together: exactly one counts, and the run follows it', async () => {
    const legit = await startLegit();
    const id = legit.body.requestId;
    const digests = { requestDigest: legit.status.requestDigest!, recordSetHash: legit.status.recordSetHash! };
    await Promise.all([
      appendDecision(p, 'bob', { requestId: id, decision: 'approve', ...digests }),
      appendDecision(p, 'dave', { requestId: id, decision: 'deny', ...digests }),
    ]);
    await Promise.all([
      legit.handle.executeUpdate(decisionUpdate).catch(() => null),
      legit.handle.executeUpdate(decisionUpdate).catch(() => null),
    ]);
    const result = await legit.handle.result();
    const entries = await auditEntriesFor(p.db, id);
    const first = entries.find((e) => e.event === 'decision_signed')!;
    const verdicts = entries.filter((e) => e.event === 'approved' || e.event === 'denied');
    expect(verdicts).toHaveLength(1);
    expect(verdicts[0].details.decisionEntry).toBe(first.id);
    const firstDecision = (first.details.document as { decision: string }).decision;
    expect(result.status).toBe(firstDecision === 'approve' ? 'completed' : 'denied');
    expect((await reads(id)).length > 0).toBe(firstDecision === 'approve');
  });

  test('a recovery worker whose clock is behind still ends an undecided request as expired', async () => {
    await p.stopWorker();
    const connection = await NativeConnection.connect({ address: testServices().temporalAddress });
    const policy = { ...p.config.recovery, approvalTimeoutSeconds: 2 };
    const workflows = await Worker.create({
      connection,
      taskQueue: p.config.temporal.taskQueue,
      workflowsPath: require.resolve('../../workflows'),
      dataConverter: dataConverter(p.keyring),
    });
    const recovery = await Worker.create({
      connection,
      taskQueue: p.config.temporal.recoveryTaskQueue,
      activities: createRecoveryActivities({
        db: recoveryDb,
        keyring: p.keyring,
        operatorsFile: p.config.recovery.operatorsFile,
        policy,
        now: () => Date.now() - 6000, // six seconds behind the server's timers (the old check allowed five)
      }),
      dataConverter: dataConverter(p.keyring, { requireEncrypted: true }),
    });
    const running = Promise.all([workflows.run(), recovery.run()]);
    try {
      const body = requestBody();
      const result = await p.client.workflow.execute(recoveryWorkflow, {
        workflowId: recoveryWorkflowId(body.requestId),
        taskQueue: p.config.temporal.taskQueue,
        args: [sign(body, key('alice')), { activityTaskQueue: p.config.temporal.recoveryTaskQueue }],
      });
      expect(result).toMatchObject({ status: 'expired' });
      expect((await auditEntriesFor(p.db, body.requestId)).map((e) => e.event)).toEqual([
        'request_received',
        'authorised',
        'expired',
      ]);
    } finally {
      workflows.shutdown();
      recovery.shutdown();
      await running;
      await connection.close();
      await p.restartWorker();
    }
  });
});
