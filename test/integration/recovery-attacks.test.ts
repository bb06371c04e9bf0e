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
import { createDb } from '../../lib/platform/db';
import { checkAuditRole } from '../../recovery-worker';
import { optionsFromConfig, runIngest } from '../../cli/ingest-run';
import { sampleBodies } from '../../lib/ingest/load';
import {
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
import { asAppRole, createDatabase, runClient, SAMPLE, startPipeline, testServices, type Pipeline } from './helpers';

let p: Pipeline;
let app: PgClient;
let owner: PgClient;
let sampleIds: string[];
let plainClient: Client;
let attackerConnection: NativeConnection;
const attackers: { worker: Worker; run: Promise<void> }[] = [];
const queues = { plain: `attacker-plain-${crypto.randomUUID()}`, codec: `attacker-codec-${crypto.randomUUID()}` };

const OPERATORS: Record<string, Role[]> = { alice: ['pii-requester'], bob: ['pii-approver'] };
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
  const approval = approvalOf(legit.body.requestId, legit.status.recordSetHash!);
  expect(await legit.handle.executeUpdate(decisionUpdate, { args: [approval] })).toMatchObject({ ok: true });
  expect(await legit.handle.result()).toMatchObject({ status: 'completed', records: 2 });
  return { ...legit, approval };
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
      else expect(outcome).toMatchObject({ type: 'bad_request', error: expect.stringMatching(/unsigned/) });
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
    // An approval judged for nobody's request writes no decision.
    expect(await attack('codec', 'verifyApproval', [legit.approval])).toMatchObject({
      ok: true,
      result: { ok: false, code: 'not_authorised' },
    });
    expect(await attack('codec', 'expireRequest', [])).toMatchObject({ ok: false, type: 'not_a_recovery' });
    expect(await attack('codec', 'expireRequest', [], recoveryWorkflowId(id))).toMatchObject({ ok: false });
    expect(
      (await attack('codec', 'recordDecision', [{ requestId: id, event: 'approved', actor: 'bob', details: {} }])).error,
    ).toMatch(/not registered|recordDecision/);
    // The ingest task queue (where the original attack scheduled them) runs no recovery activity at all.
    for (const activity of ['recoverRecords', 'authoriseRequest', 'verifyApproval']) {
      expect((await attack('codec', activity, [legit.signed], undefined, p.config.temporal.taskQueue)).error).toMatch(
        /not registered/,
      );
    }
    for (const activity of ['authoriseRequest', 'verifyApproval', 'recoverRecords', 'expireRequest']) {
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
    const approvalWithSurrogates = {
      body: { type: 'pii-recovery-approval', requestId: '\udc00', comment: 'x\ud800' },
      signature: '\ud800',
    };
    expect(await attack('codec', 'verifyApproval', [approvalWithSurrogates])).toMatchObject({ ok: true, result: { ok: false } });
    const check = await verifyAuditChain(p.db);
    expect(check).toMatchObject({ ok: true });
    const unknown = await auditEntriesFor(p.db, 'unknown');
    expect(unknown.length).toBeGreaterThanOrEqual(2);
    // Written straight through the append function too: whatever the details, stored and hashed as stored.
    const [stored] = await appendAudit(p.db, [
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
  expect(
    await legit.handle.executeUpdate(decisionUpdate, { args: [approvalOf(legit.body.requestId, legit.status.recordSetHash!)] }),
  ).toMatchObject({ ok: true });
  const result = await legit.handle.result();
  expect(result).toMatchObject({ status: 'completed', records: frozen.length });
  const read = (await auditEntriesFor(p.db, legit.body.requestId))
    .filter((e) => e.event === 'record_read')
    .map((e) => e.details.messageId);
  expect(read.sort()).toEqual([...frozen].sort());
  expect(read).not.toContain(late);
});

test('an approval of another record set, or replayed onto another request, does not count', async () => {
  const first = await startLegit();
  const second = await startLegit();
  // The second request's approval, replayed onto the first; an approval of a record set the approver was not shown.
  const forSecond = approvalOf(second.body.requestId, second.status.recordSetHash!);
  expect(await first.handle.executeUpdate(decisionUpdate, { args: [forSecond] })).toMatchObject({
    ok: false,
    code: 'wrong_request',
  });
  expect(
    await first.handle.executeUpdate(decisionUpdate, { args: [approvalOf(first.body.requestId, 'a'.repeat(64))] }),
  ).toMatchObject({ ok: false, code: 'wrong_record_set' });
  expect(await reads(first.body.requestId)).toEqual([]);
  await first.handle.terminate('test over');
  await second.handle.terminate('test over');
});

test('a database error that retrying cannot fix fails the recovery at once instead of retrying without end', async () => {
  await owner.query('REVOKE SELECT ON user_logins FROM login_ingest_app');
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
    await owner.query('GRANT SELECT ON user_logins TO login_ingest_app');
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
    // The function has no parameter for id, time, prev_hash or hash: what it appends chains.
    const appended = (
      await app.query(`SELECT * FROM pii_audit_append($1, 'request_refused', null, '{"code": "test"}')`, [crypto.randomUUID()])
    ).rows[0];
    expect(appended.prev_hash).toBe(last.hash);
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
