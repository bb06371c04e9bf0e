// `npm run bench`: ingest throughput beside a plain receive-and-delete drain of the same
// queue on the same machine, the yardstick of the throughput target (ingest ≥ 85% of the
// plain drain). Runs on ephemeral embedded services (or those the environment names).
//   npm run bench -- [--messages 20000] [--batch-size 250] [--concurrency 4]
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { loadConfig } from '../lib/config';
import { optionsFromConfig, runIngest } from '../lib/ingest-run';
import { loadKeyring } from '../lib/keyring';
import { generateBodies } from '../lib/load';
import { migrate } from '../lib/migrate';
import { createSqsClient, queueDepth, sendMessages } from '../lib/sqs';
import { connectClient } from '../lib/temporal';
import { startServices } from '../services';
import { startWorker } from '../worker';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

/** The yardstick: receive 10 at a time on `pollers` concurrent loops, delete each batch, until empty. */
async function plainDrain(sqs: SQSClient, queueUrl: string, pollers: number): Promise<number> {
  let drained = 0;
  await Promise.all(
    Array.from({ length: pollers }, async () => {
      for (let empty = 0; empty < 2; ) {
        const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60 }));
        if (!Messages.length) {
          empty++;
          continue;
        }
        empty = 0;
        await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
        drained += Messages.length;
      }
    }),
  );
  return drained;
}

async function main() {
  // The embedded emulator takes any credentials; the SDK's default chain reads these.
  process.env.AWS_ACCESS_KEY_ID ??= 'bench';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'bench';
  const messages = arg('messages', 20_000);
  const base = loadConfig({ ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'WARN' }, []);
  const services = await startServices(base, { ephemeral: true, log: () => {} });
  try {
    const env = {
      ...process.env,
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'WARN',
      TEMPORAL_ADDRESS: services.temporalAddress,
      DATABASE_URL: services.databaseUrl,
      SQS_QUEUE_URL: services.sqsQueueUrl,
      AWS_ENDPOINT_URL_SQS: services.sqsEndpoint,
      AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
    };
    const config = loadConfig(env);
    await migrate(config.databaseUrl, () => {});
    const keyring = await loadKeyring(config, () => {});
    const sqs = createSqsClient(config.sqs);
    const bodies = generateBodies(messages, { malformedShare: 0.01, duplicateShare: 0.05, seed: 42 });

    await sendMessages(sqs, config.sqs.queueUrl, bodies);
    let t = performance.now();
    const drained = await plainDrain(sqs, config.sqs.queueUrl, config.ingest.receiveConcurrency * config.ingest.concurrency);
    const plainSeconds = (performance.now() - t) / 1000;

    await sendMessages(sqs, config.sqs.queueUrl, bodies);
    const worker = await startWorker(config, keyring);
    const client = await connectClient(config.temporal, keyring);
    const options = { ...optionsFromConfig(config.ingest), batchSize: arg('batch-size', config.ingest.batchSize), concurrency: arg('concurrency', config.ingest.concurrency) };
    // Peak memory of this process (client and worker both live here) while the ingest runs.
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
    t = performance.now();
    const run = await runIngest(client, config, options);
    const ingestSeconds = (performance.now() - t) / 1000;
    clearInterval(sampler);
    const left = await queueDepth(sqs, config.sqs.queueUrl);
    await client.connection.close();
    await worker.shutdown();
    sqs.destroy();

    const plainRate = drained / plainSeconds;
    const ingestRate = run.summary.received / ingestSeconds;
    console.log(JSON.stringify({ messages, options, plain: { drained, seconds: +plainSeconds.toFixed(2), perSecond: Math.round(plainRate) }, ingest: { received: run.summary.received, persisted: run.summary.persisted, quarantined: run.summary.quarantined, batches: run.summary.batches, runs: run.summary.runs, seconds: +ingestSeconds.toFixed(2), perSecond: Math.round(ingestRate), peakRssMiB: Math.round(peakRss / 2 ** 20) }, ratio: +(ingestRate / plainRate).toFixed(3), left, node: process.version }, null, 2));
  } finally {
    await services.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
