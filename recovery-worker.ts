// The recovery worker: the only one that runs the activities which decrypt PII or write
// the recovery's audit trail. It polls a task queue of its own (TEMPORAL_RECOVERY_TASK_QUEUE,
// default <TEMPORAL_TASK_QUEUE>-pii-recovery), so a deployment can run it apart, on hosts
// that alone hold the PII data keys, and its codec refuses any payload that is not
// encrypted with the project's codec keys. The activities check their own authority all
// the same (activities/recovery.ts): anyone with access to the namespace can schedule them.
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import { Worker, type NativeConnection } from '@temporalio/worker';
import { createRecoveryActivities } from './activities/recovery';
import type { Config } from './lib/platform/config';
import { isPermanentDbError, sqlState, type Db } from './lib/platform/db';
import type { Keyring } from './lib/pii/keyring';
import { dataConverter } from './lib/platform/temporal';

/**
 * The audit trail holds only if no writer can alter its table: refuses (in production) or
 * warns (elsewhere) when the recovery worker's role (RECOVERY_DATABASE_URL) owns
 * pii_audit_log or can act as its owner, or can write it directly.
 */
export async function checkAuditRole(db: Db, production: boolean, warn: (msg: string) => void = console.error): Promise<void> {
  const [row] = await db.$queryRaw<{ role: string; owns: boolean; writes: boolean }[]>`
    SELECT current_user::text AS role, pg_has_role(current_user, tableowner, 'USAGE') AS owns,
           has_table_privilege('pii_audit_log', 'INSERT') OR has_table_privilege('pii_audit_log', 'UPDATE') AS writes
    FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'pii_audit_log'`;
  if (!row || (!row.owns && !row.writes)) return;
  const problem =
    `RECOVERY_DATABASE_URL connects as ${row.role}, which ${row.owns ? 'owns pii_audit_log (it could disable its triggers)' : 'can write pii_audit_log directly'}: ` +
    'the recovery worker must use its own role (login_ingest_recovery) and the migrations the owner role (DATABASE_OWNER_URL); see the README, "Database roles"';
  if (production) throw new Error(problem);
  warn(`Warning: ${problem}`);
}

/** checkAuditRole, waiting for a database that is away (a worker started during an outage waits rather than exits). */
async function checkAuditRoleWhenReachable(
  db: Db,
  production: boolean,
  warn: (msg: string) => void = console.error,
): Promise<void> {
  for (let said = false; ;) {
    try {
      return await checkAuditRole(db, production, warn);
    } catch (err) {
      if (isPermanentDbError(err) || !isUnreachable(err)) throw err;
      if (!said)
        warn(
          `PostgreSQL (RECOVERY_DATABASE_URL) is not reachable yet (SQLSTATE ${sqlState(err) ?? 'none'}); retrying every 2 s.`,
        );
      said = true;
      await sleep(2000);
    }
  }
}

/** A connection that failed or was refused, as opposed to a database that answered with an error. */
function isUnreachable(err: unknown): boolean {
  const state = sqlState(err);
  if (state) return ['08', '57'].includes(state.slice(0, 2)); // connection exception, operator intervention (shutting down)
  const text = String((err as Error)?.message ?? '') + inspect((err as { cause?: unknown })?.cause ?? ''); // a cause object's message too
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|Connection terminated|the database system is (starting up|shutting down)|Can't reach database|DatabaseNotReachable/i.test(
    text,
  );
}

export async function createRecoveryWorker(opts: {
  connection: NativeConnection;
  config: Config;
  keyring: Keyring;
  db: Db;
}): Promise<Worker> {
  const { connection, config, keyring, db } = opts;
  await checkAuditRoleWhenReachable(db, config.production);
  return Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.recoveryTaskQueue,
    activities: createRecoveryActivities({ db, keyring, operatorsFile: config.recovery.operatorsFile, policy: config.recovery }),
    dataConverter: dataConverter(keyring, { requireEncrypted: true }),
    maxConcurrentActivityTaskExecutions: 8,
  });
}

/** Runs both workers until either stops; then stops the other too. */
export async function runTogether(workers: Worker[]): Promise<void> {
  const stopAll = () => {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
  };
  await Promise.all(workers.map((w) => w.run().finally(stopAll)));
}
