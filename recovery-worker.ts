// The recovery worker: the only one that runs the activities which decrypt PII or write
// the recovery's audit trail. It polls a task queue of its own (TEMPORAL_RECOVERY_TASK_QUEUE,
// default <TEMPORAL_TASK_QUEUE>-pii-recovery), so a deployment can run it apart, on hosts
// that alone hold the PII data keys, and its codec refuses any payload that is not
// encrypted with the project's codec keys. The activities check their own authority all
// the same (activities/recovery.ts): anyone with access to the namespace can schedule them.
import { Worker, type NativeConnection } from '@temporalio/worker';
import { createRecoveryActivities } from './activities/recovery';
import type { Config } from './lib/config';
import type { Db } from './lib/db';
import type { Keyring } from './lib/keyring';
import { dataConverter } from './lib/temporal';

export async function createRecoveryWorker(opts: { connection: NativeConnection; config: Config; keyring: Keyring; db: Db }): Promise<Worker> {
  const { connection, config, keyring, db } = opts;
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
