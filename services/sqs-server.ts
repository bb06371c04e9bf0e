// The SQS emulator as a process of its own: `ts-node services/sqs-server.ts PORT [REGION]`
// prints one JSON line with its endpoint once it listens, and runs until SIGTERM/SIGINT.
// The benchmark's yardstick and the pipeline both talk to it, so neither shares an event
// loop with the emulator (in-process, a drain reads less than half of what the queue allows).
import { startEmbeddedSqs } from './sqs';

async function main(): Promise<void> {
  const port = Number(process.argv[2] ?? 0);
  const sqs = await startEmbeddedSqs({ port, queueName: 'login-queue', region: process.argv[3] ?? 'us-east-1' });
  console.log(JSON.stringify({ endpoint: sqs.endpoint, queueUrl: sqs.queueUrl }));
  const stop = () => void sqs.stop().finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
