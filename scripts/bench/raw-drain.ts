// The yardstick: a plain receive-and-delete drain, as fast as the queue allows. Runs as its
// own process (`ts-node scripts/bench/raw-drain.ts ENDPOINT QUEUE_URL THREADS POLLERS`):
// THREADS worker threads with POLLERS loops each, 10 messages a call, DeleteMessageBatch
// per call, until every loop has seen two empty receives in a row. Prints one JSON line.
import { Worker } from 'node:worker_threads';

// Plain JavaScript in the threads: nothing to compile, nothing but the drain.
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const { SQSClient, ReceiveMessageCommand, DeleteMessageBatchCommand } = require('@aws-sdk/client-sqs');
const { endpoint, queueUrl, pollers } = workerData;
const sqs = new SQSClient({ region: 'us-east-1', endpoint, useQueueUrlAsEndpoint: false, cacheMiddleware: true, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
let drained = 0;
async function loop() {
  for (let empty = 0; empty < 2; ) {
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60 }));
    if (!Messages.length) { empty++; continue; }
    empty = 0;
    await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })) }));
    drained += Messages.length;
  }
}
parentPort.once('message', async () => {
  await Promise.all(Array.from({ length: pollers }, loop));
  parentPort.postMessage(drained);
});
parentPort.postMessage('ready');
`;

async function main(): Promise<void> {
  const [endpoint, queueUrl, threads, pollers] = process.argv.slice(2);
  const workers = Array.from(
    { length: Number(threads) },
    () => new Worker(THREAD, { eval: true, workerData: { endpoint, queueUrl, pollers: Number(pollers) } }),
  );
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const counts = await Promise.all(
    workers.map((w) => {
      const done = new Promise<number>((resolve) => w.once('message', resolve));
      w.postMessage('go');
      return done;
    }),
  );
  // The last loop waits out two empty long polls (~2 s) before it knows the queue is empty;
  // that tail is the same for every drain measured, the pipeline's included.
  const seconds = (performance.now() - started) / 1000;
  const drained = counts.reduce((a, b) => a + b, 0);
  const cpu = process.cpuUsage(cpuBefore);
  console.log(JSON.stringify({ drained, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 }));
  await Promise.all(workers.map((w) => w.terminate()));
}

void main();
