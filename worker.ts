// The worker: wires configuration, keys, the database, SQS and Temporal together and runs
// the ingest workflows and activities. `npx ts-node worker.ts` (or `node dist/worker.js` in
// the image) runs it until Ctrl-C / SIGTERM.
import path from 'node:path';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createIngestActivities } from './activities/ingest';
import { createKeyActivities } from './activities/keys';
import { createAnchorActivities } from './activities/anchor';
import { anchorStore } from './lib/recovery/anchor';
import { loadConfig, type Config } from './lib/platform/config';
import { createDb, viaClient } from './lib/platform/db';
import { DrainPool } from './lib/ingest/drain-pool';
import { loadKeyring, type Keyring } from './lib/pii/keyring';
import { errorMessage } from './lib/platform/guards';
import { logger, noteNodeVersion, setLogFormat, silenceAwsNodeVersionWarning } from './lib/platform/log';
import { installWorkerRuntime } from './lib/platform/logging';
import { workflowBundle } from './lib/platform/workflow-bundle';
import { startMetricsServer, type RunningMetricsServer } from './lib/platform/metrics-server';
import { ensureSearchAttributes } from './lib/platform/search-attributes';
import { createSqsClient } from './lib/ingest/sqs';
import { dataConverter } from './lib/platform/temporal';
import { freePort } from './services/ports';
import { createRecoveryWorker, runTogether } from './recovery-worker';

export interface RunningWorker {
  worker: Worker;
  /** Resolves when the worker has stopped (after shutdown(), or on a fatal error). */
  done: Promise<void>;
  /** The metrics/readiness endpoint, when METRICS_ADDRESS is set. */
  metricsUrl: string | null;
  shutdown: () => Promise<void>;
}

/** Workflows bundled at build time (scripts/build-assets.ts, in the image): next to the compiled worker. */
export const WORKFLOW_BUNDLE = path.join(__dirname, 'workflow-bundle.js');

export async function startWorker(config: Config, keyring: Keyring): Promise<RunningWorker> {
  silenceAwsNodeVersionWarning();
  // The SDK's own Prometheus exporter listens on a private loopback port; the metrics server
  // at METRICS_ADDRESS serves it together with the pipeline's metrics.
  const runtime = installWorkerRuntime({
    level: config.logLevel,
    format: config.logFormat,
    sdkMetricsAddress: config.worker.metricsAddress ? `127.0.0.1:${await freePort()}` : null,
  });
  // Under ts-node the workflows are bundled in a child process: it runs while the rest starts.
  const bundle = workflowBundle(WORKFLOW_BUNDLE);
  bundle.catch(() => {}); // awaited below; a failure is reported there
  const db = createDb(config.databaseUrl);
  const sqs = createSqsClient(config.sqs);
  // The drain threads start now, so the first ingest does not wait for them.
  const pool = new DrainPool(config, config.worker.drainThreads, {
    db: viaClient(db),
    sqs,
    queueUrl: config.sqs.queueUrl,
    keyring,
  });
  await pool.start();
  // The audit anchor store is checked now: a bucket without Object Lock stops the worker at start, not at the first anchor.
  const store = anchorStore(config);
  let connection: NativeConnection | null = null;
  let metrics: RunningMetricsServer | null = null;
  let recoveryDb: ReturnType<typeof createDb> | null = null;
  const closeAll = async () => {
    await metrics?.close();
    await pool.close();
    store.close();
    await connection?.close();
    await db.$disconnect();
    await recoveryDb?.$disconnect();
    sqs.destroy();
  };
  try {
    await store.open();
    connection = await NativeConnection.connect({ address: config.temporal.address });
    const registered = await ensureSearchAttributes(connection.operatorService, config.temporal.namespace, (line) =>
      logger.warn(line),
    );
    if (registered.length)
      logger.info(`Registered the search attributes ${registered.join(', ')} in namespace ${config.temporal.namespace}.`);
    const worker = await Worker.create({
      connection,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      workflowBundle: await bundle,
      activities: {
        ...createIngestActivities({ db, sqs, queueUrl: config.sqs.queueUrl, pool }),
        ...createKeyActivities({ db, keyring }),
        ...createAnchorActivities({ db, store }),
      },
      dataConverter: dataConverter(keyring),
      maxConcurrentActivityTaskExecutions: config.worker.maxConcurrentActivities,
      shutdownGraceTime: `${config.worker.shutdownGraceSeconds}s`,
    });
    // The recovery activities run only with the recovery worker's own database role; a worker
    // without it drains and stores, and recovery requests wait for one that has it.
    const workers = [worker];
    if (config.recoveryDatabaseUrl) {
      recoveryDb = createDb(config.recoveryDatabaseUrl, { maxConnections: 4 });
      workers.push(await createRecoveryWorker({ connection, config, keyring, db: recoveryDb }));
    } else {
      logger.warn(
        'RECOVERY_DATABASE_URL is not set: this worker does not run the PII recovery activities (recovery requests wait for a worker that has the recovery role; README, "Database roles").',
      );
    }
    if (config.worker.metricsAddress) {
      metrics = await startMetricsServer({
        address: config.worker.metricsAddress,
        sdkMetricsAddress: runtime.sdkMetricsAddress,
        ready: () => ({ ready: workers.every((w) => w.getState() === 'RUNNING'), state: worker.getState() }),
      });
    }
    const done = runTogether(workers).finally(closeAll);
    return {
      worker,
      done,
      metricsUrl: metrics?.url ?? null,
      async shutdown() {
        for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
        await done;
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

async function main(): Promise<void> {
  silenceAwsNodeVersionWarning();
  const config = loadConfig();
  setLogFormat(config.logFormat);
  noteNodeVersion();
  const keyring = await loadKeyring(config, (line) => logger.info(line));
  const running = await startWorker(config, keyring);
  const { taskQueue, address, namespace } = config.temporal;
  logger.info(
    `Worker polling task queue "${taskQueue}" (recovery: "${config.temporal.recoveryTaskQueue}") on ${address} (namespace ${namespace}). Ctrl-C stops it.`,
  );
  if (running.metricsUrl)
    logger.info(
      `Metrics on ${running.metricsUrl}/metrics, readiness ${running.metricsUrl}/readyz, health ${running.metricsUrl}/healthz.`,
    );
  await running.done; // the SDK shuts the worker down on SIGINT/SIGTERM
}

if (require.main === module) {
  main().catch((err) => {
    logger.error(errorMessage(err));
    process.exit(1);
  });
}
