// The body of one drain thread (lib/ingest/drain-pool.ts starts them): its own SQS client,
// database pool (Prisma's driver adapter alone, lib/platform/db.ts) and keyring, so the AWS
// SDK's request signing, parsing, masking and the database driver's work run beside the
// worker's main thread instead of on it. It runs the drains the pool asks for and answers
// with counts only.
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../platform/config';
import { connectRawSql } from '../platform/db';
import { drain, PermanentDrainError, type DrainOptions } from './drain';
import { loadKeyring } from '../pii/keyring';
import { createSqsClient } from './sqs';
import type { DrainResult } from '../contract/types';

export type ToThread = { type: 'drain'; id: number; opts: DrainOptions } | { type: 'stop'; id: number } | { type: 'close' };
export type FromThread =
  | { type: 'ready' }
  | { type: 'progress'; id: number; result: DrainResult }
  | { type: 'done'; id: number; result: DrainResult }
  | { type: 'failed'; id: number; error: { message: string; code: string; permanent: boolean } }
  | { type: 'init_failed'; message: string };

export interface ThreadData {
  config: Config;
  /** Database connections of this thread. */
  maxConnections: number;
}

async function main(): Promise<void> {
  const port = parentPort!;
  const send = (m: FromThread) => port.postMessage(m);
  const { config, maxConnections } = workerData as ThreadData;
  let deps;
  try {
    deps = {
      sqs: createSqsClient(config.sqs),
      queueUrl: config.sqs.queueUrl,
      db: await connectRawSql(config.databaseUrl, { maxConnections }),
      keyring: await loadKeyring(config, () => {}),
    };
  } catch (err) {
    return send({ type: 'init_failed', message: (err as Error).message });
  }
  const running = new Map<number, AbortController>();
  port.on('message', (msg: ToThread) => {
    if (msg.type === 'stop') return running.get(msg.id)?.abort();
    if (msg.type === 'close') {
      for (const c of running.values()) c.abort();
      void deps.db.close().finally(() => {
        deps.sqs.destroy();
        port.close();
      });
      return;
    }
    const controller = new AbortController();
    running.set(msg.id, controller);
    // Progress after a commit, at most a few times a second: counts for the activity's heartbeat.
    let last = 0;
    const onProgress = (result: DrainResult) => {
      if (Date.now() - last < 250) return;
      last = Date.now();
      send({ type: 'progress', id: msg.id, result });
    };
    drain(deps, msg.opts, controller.signal, onProgress)
      .then(
        (result) => send({ type: 'done', id: msg.id, result }),
        (err: Error) =>
          send({
            type: 'failed',
            id: msg.id,
            error: {
              message: err.message,
              code: err instanceof PermanentDrainError ? err.code : err.name,
              permanent: err instanceof PermanentDrainError,
            },
          }),
      )
      .finally(() => running.delete(msg.id));
  });
  send({ type: 'ready' });
}

void main();
