// `npm run demo`: the whole path on the embedded default, from one command. Starts the
// services (or uses those the environment points at), applies migrations, loads the
// reference sample into the queue, runs a worker, runs an ingest, prints the summary and
// keeps everything (and the Web UI) up until Ctrl-C.
import { loadConfig } from '../lib/config';
import { formatSummary, optionsFromConfig, runIngest } from '../lib/ingest-run';
import { loadKeyring } from '../lib/keyring';
import { sampleBodies } from '../lib/load';
import { migrate } from '../lib/migrate';
import { createSqsClient, sendMessages } from '../lib/sqs';
import { connectClient } from '../lib/temporal';
import { startServices } from '../services';
import { startWorker } from '../worker';

const log = (msg: string) => console.log(msg);

async function main() {
  const base = loadConfig(process.env, []);
  log('Starting services ...');
  const services = await startServices(base, { log });
  const shutdown: (() => Promise<void>)[] = [services.stop];
  const stop = async () => {
    for (const fn of shutdown.reverse()) await fn().catch(() => {});
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  try {
    log(`  ${services.started.join(', ') || 'nothing started: all services from the environment'}`);
    const config = loadConfig(process.env); // now resolves the embedded services too
    const keyring = await loadKeyring(config, log);

    const applied = await migrate(config.databaseOwnerUrl, log);
    log(`Database ready (${applied.length} migration(s) applied).`);

    const sqs = createSqsClient(config.sqs);
    const ids = await sendMessages(sqs, config.sqs.queueUrl, sampleBodies());
    sqs.destroy();
    log(`Loaded ${ids.length} sample messages into ${config.sqs.queueUrl}.`);

    // The worker's per-activity lines would bury the summary: warnings only, unless LOG_LEVEL says otherwise.
    const worker = await startWorker({ ...config, logLevel: process.env.LOG_LEVEL ? config.logLevel : 'WARN' }, keyring);
    shutdown.push(worker.shutdown);
    log(`Worker running on task queue "${config.temporal.taskQueue}".`);

    const client = await connectClient(config.temporal, keyring);
    shutdown.push(() => client.connection.close());
    const run = await runIngest(client, config, optionsFromConfig(config.ingest), log);
    log('');
    log(formatSummary(run));
    log('');
    if (services.temporalUiUrl) {
      log(`Temporal Web UI: ${services.temporalUiUrl}/namespaces/${config.temporal.namespace}/workflows/${run.workflowId}`);
    }
    log('Services and worker stay up: in another terminal try `npx ts-node client.ts load --generate 1000` and');
    log('`npx ts-node client.ts ingest`. Ctrl-C stops everything.');
  } catch (err) {
    console.error(err instanceof Error ? (process.env.DEBUG ? err.stack : err.message) : err);
    await stop();
  }
}

main();
