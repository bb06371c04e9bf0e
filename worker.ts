// The worker: wires configuration, keys, the database, SQS and Temporal together and runs
// the ingest workflows and activities. `npx ts-node worker.ts` runs it until Ctrl-C.
import { NativeConnection, Worker } from '@temporalio/worker';
import { createIngestActivities } from './activities/ingest';
import { createKeyActivities } from './activities/keys';
import { loadConfig, type Config } from './lib/config';
import { createDb } from './lib/db';
import { DrainPool } from './lib/drain-pool';
import { loadKeyring, type Keyring } from './lib/keyring';
import { installWorkerLogging } from './lib/logging';
import { createSqsClient } from './lib/sqs';
import { dataConverter } from './lib/temporal';
import { createRecoveryWorker, runTogether } from './recovery-worker';

export interface RunningWorker {
  worker: Worker;
  /** Resolves when the worker has stopped (after shutdown(), or on a fatal error). */
  done: Promise<void>;
  shutdown(): Promise<void>;
}

export async function startWorker(config: Config, keyring: Keyring): Promise<RunningWorker> {
  installWorkerLogging(config.logLevel);
  const db = createDb(config.databaseUrl);
  const sqs = createSqsClient(config.sqs);
  // The drain threads start now, so the first ingest does not wait for them.
  const pool = new DrainPool(config, config.worker.drainThreads, { db, sqs, queueUrl: config.sqs.queueUrl, keyring });
  await pool.start();
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowsPath: require.resolve('./workflows'),
    activities: {
      ...createIngestActivities({ db, sqs, queueUrl: config.sqs.queueUrl, pool }),
      ...createKeyActivities({ db, keyring }),
    },
    dataConverter: dataConverter(keyring),
    maxConcurrentActivityTaskExecutions: config.worker.maxConcurrentActivities,
  });
  const recovery = await createRecoveryWorker({ connection, config, keyring, db });
  const done = runTogether([worker, recovery]).finally(async () => {
    await pool.close();
    await connection.close();
    await db.$disconnect();
    sqs.destroy();
  });
  return {
    worker,
    done,
    async shutdown() {
      for (const w of [worker, recovery]) if (w.getState() === 'RUNNING') w.shutdown();
      await done;
    },
  };
}

async function main(): Promise<void> {
  const config = loadConfig();
  const keyring = await loadKeyring(config);
  const running = await startWorker(config, keyring);
  console.log(`Worker polling task queue "${config.temporal.taskQueue}" (recovery: "${config.temporal.recoveryTaskQueue}") on ${config.temporal.address} (namespace ${config.temporal.namespace}). Ctrl-C stops it.`);
  await running.done; // the SDK shuts the worker down on SIGINT/SIGTERM
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
