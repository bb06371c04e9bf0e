// The recovery activities' error classification (activities/recovery.ts), run in
// MockActivityEnvironment with the calling workflow's identity set as the server would set
// it: refusals are non-retryable ApplicationFailures with the refusal code as their type, a
// database error that retrying cannot fix (lib/platform/db.ts isPermanentDbError) fails for good
// naming only its SQLSTATE, and an outage is left for Temporal to retry. The database is a
// stand-in that fails every statement as the Prisma pg adapter reports it; what the
// activities do on a real database is tested in test/integration/recovery*.test.ts.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createRecoveryActivities, type RecoveryDeps } from '../../activities/recovery';
import { generateOperatorKeys } from '../../lib/recovery';
import { makeTempDir, removeTempDirs, testKeyring } from './helpers';

afterAll(removeTempDirs);

/** A database whose every statement fails with `err`, and that counts the statements tried. */
function failingDb(err: unknown) {
  const db = {
    statements: 0,
    $queryRaw: async () => {
      db.statements++;
      throw err;
    },
    $transaction: async () => {
      db.statements++;
      throw err;
    },
  };
  return db;
}

const policy = { maxRecords: 10, requireApproval: true, approvalTimeoutSeconds: 3600, signatureMaxAgeSeconds: 300 };
const acts = (db: unknown) =>
  createRecoveryActivities({
    db: db as RecoveryDeps['db'],
    keyring: testKeyring(),
    operatorsFile: path.join(os.tmpdir(), `no-operators-${process.pid}.json`),
    policy,
  });

const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
/** Runs an activity as if scheduled by the workflow `workflowId`. */
const asWorkflow = <A extends unknown[], R>(workflowId: string, fn: (...args: A) => Promise<R>, ...args: A) =>
  new MockActivityEnvironment({ workflowExecution: { workflowId, runId: crypto.randomUUID() } }, { logger: quiet }).run(
    fn,
    ...args,
  );
const failureOf = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected the activity to fail');
    },
    (err: unknown) => err,
  );

// As the Prisma pg adapter wraps a PostgreSQL error: Prisma's own code outside, the SQLSTATE inside.
const pgError = (sqlstate: string, message: string) =>
  Object.assign(new Error(message), {
    code: 'P2010',
    meta: { driverAdapterError: { cause: { originalCode: sqlstate, kind: 'postgres' } } },
  });

test('expireRequest scheduled by anything but a recovery workflow is refused for good, before the database is asked', async () => {
  const db = failingDb(new Error('must not be reached'));
  const err = await failureOf(asWorkflow('my-own-workflow', acts(db).expireRequest));
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err).toMatchObject({ type: 'not_a_recovery', nonRetryable: true });
  expect(db.statements).toBe(0);
});

test('a database error that retrying cannot fix fails the activity for good, naming the SQLSTATE and not the statement', async () => {
  const db = failingDb(pgError('42501', 'permission denied for table pii_audit_log: SELECT … WHERE request_id = secret-input'));
  const err = await failureOf(asWorkflow(`pii-recovery-${crypto.randomUUID()}`, acts(db).expireRequest));
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err).toMatchObject({ type: 'PermanentDbError', nonRetryable: true, message: expect.stringContaining('SQLSTATE 42501') });
  expect((err as Error).message).not.toContain('secret-input');
});

test('a refused signed request whose audit entry the database refuses fails for good too', async () => {
  const db = failingDb(pgError('23514', 'new row violates check constraint'));
  const err = await failureOf(
    asWorkflow(`pii-recovery-${crypto.randomUUID()}`, acts(db).authoriseRequest, { body: {}, signature: '' }),
  );
  expect(err).toMatchObject({ type: 'PermanentDbError', nonRetryable: true, message: expect.stringContaining('SQLSTATE 23514') });
});

test.each([
  ['the database away', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
  ['a connection failure', pgError('08006', 'connection failure')],
  ['a serialisation failure', pgError('40001', 'could not serialize access')],
])('%s is left retryable, as it came', async (_what, outage) => {
  const err = await failureOf(asWorkflow(`pii-recovery-${crypto.randomUUID()}`, acts(failingDb(outage)).expireRequest));
  expect(err).toBe(outage);
  expect(err).not.toBeInstanceOf(ApplicationFailure);
});

describe('a bad line in the operator registry', () => {
  // A second `operator keygen --register` of one name: every activity that checks a signature reads the registry.
  const duplicated = () => {
    const dir = makeTempDir();
    const file = path.join(dir, 'operators.jsonl');
    const first = generateOperatorKeys('alice', ['pii-requester']);
    const second = generateOperatorKeys('alice', ['pii-requester']);
    fs.writeFileSync(file, `${first.registryLine}\n# comment\n${second.registryLine}\n`);
    return { file, publicKeys: [first.publicKey, second.publicKey] };
  };

  test.each(['authoriseRequest', 'judgeDecision', 'recoverRecords'] as const)(
    '%s fails for good (registry_invalid), naming the line and what to do, quoting no key',
    async (activity) => {
      const { file, publicKeys } = duplicated();
      const db = failingDb(new Error('must not be reached'));
      const activities = createRecoveryActivities({
        db: db as unknown as RecoveryDeps['db'],
        keyring: testKeyring(),
        operatorsFile: file,
        policy,
      });
      const err = await failureOf(
        asWorkflow(`pii-recovery-${crypto.randomUUID()}`, activities[activity] as (signed: unknown) => Promise<unknown>, {
          body: {},
          signature: '',
        }),
      );
      expect(err).toBeInstanceOf(ApplicationFailure);
      expect(err).toMatchObject({ type: 'registry_invalid', nonRetryable: true });
      const message = (err as Error).message;
      expect(message).toContain(`PII_OPERATORS_FILE (${file}): line 3: operator "alice" is already defined on line 1`);
      expect(message).toMatch(/Fix or remove that line/);
      for (const key of publicKeys) expect(message).not.toContain(key);
      expect(db.statements).toBe(0);
    },
  );

  test('a line that is not JSON is named without being quoted (it may be a private key pasted in the wrong place)', async () => {
    const file = path.join(makeTempDir(), 'operators.jsonl');
    const pem = generateOperatorKeys('bob', ['pii-approver']).privateKeyPem.split('\n')[1];
    fs.writeFileSync(file, `${pem}\n`);
    const activities = createRecoveryActivities({
      db: failingDb(new Error('unused')) as unknown as RecoveryDeps['db'],
      keyring: testKeyring(),
      operatorsFile: file,
      policy,
    });
    const err = await failureOf(
      asWorkflow(`pii-recovery-${crypto.randomUUID()}`, activities.authoriseRequest, { body: {}, signature: '' }),
    );
    expect(err).toMatchObject({ type: 'registry_invalid', nonRetryable: true });
    expect((err as Error).message).toContain('line 1: not valid JSON');
    expect((err as Error).message).not.toContain(pem.slice(0, 8));
  });
});
