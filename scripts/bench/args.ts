// The benchmark's command line (`npm run bench -- --messages N --runs N --workers 1,2,4
// --json FILE --batch-size N --concurrency N --threads N --compiled --sqs-latency-ms N`),
// read and checked before any service starts.
import type { WorkerEntry } from '../harness';

export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const num = (name: string, fallback: number) => {
  const v = Number(arg(name, String(fallback)));
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} must be a whole number (got ${arg(name, '')})`);
  return v;
};

export interface BenchArgs {
  messages: number;
  runs: number;
  workerCounts: number[];
  /** Where to write the full report as JSON; '' for nowhere. */
  jsonFile: string;
  /** The ingest's settings given on the command line, as the workers' environment variables. */
  ingestEnv: Record<string, string>;
  /** `--compiled`: the workers run `node dist/worker.js` (built first), as the image does; else `worker.ts` under ts-node. */
  entry: WorkerEntry;
  /** `--sqs-latency-ms N`: every SQS call of the measured processes is held N ms in a proxy (0: none). */
  sqsLatencyMs: number;
}

export function readBenchArgs(): BenchArgs {
  const messages = num('messages', 50_000);
  const runs = num('runs', 5);
  const workerCounts = arg('workers', '1').split(',').map(Number);
  const jsonFile = arg('json', '');
  if (workerCounts.some((w) => !Number.isInteger(w) || w < 1 || w > 16))
    throw new Error('--workers takes whole numbers from 1 to 16, e.g. 1,2,4');
  const ingestEnv = {
    ...(arg('batch-size', '') && { INGEST_BATCH_SIZE: arg('batch-size', '') }),
    ...(arg('concurrency', '') && { INGEST_CONCURRENCY: arg('concurrency', '') }),
    ...(arg('threads', '') && { WORKER_DRAIN_THREADS: arg('threads', '') }),
  };
  const entry = process.argv.includes('--compiled') ? 'compiled' : 'ts-node';
  const sqsLatencyMs = num('sqs-latency-ms', 0);
  return { messages, runs, workerCounts, jsonFile, ingestEnv, entry, sqsLatencyMs };
}
