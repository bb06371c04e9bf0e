// lib/ingest/: the pipeline's I/O, run inside the worker: the SQS calls (`sqs`), the chunk
// commit (`persist`), this streaming drain (run in worker threads by `drain-pool` and
// `drain-thread`), sample and synthetic bodies (`load`) and the pipeline's metrics
// (`metrics`). It may import lib/contract, lib/pipeline, lib/pii and lib/platform, never
// workflows/, activities/ or cli/ (test/unit/layout.test.ts checks). Start reading here, at
// drain(); activities/ingest.ts is the activity that runs it.
//
// This file: the streaming drain, the whole ingest of one time slice inside one thread of a worker.
// Pollers keep ReceiveMessage calls in flight all the time; each message is transformed
// (parse → flatten → validate → mask) as it arrives; the outcomes are committed in chunks
// (one transaction each, lib/ingest/persist.ts), and a chunk's messages are deleted only after
// its commit. Nothing of a message leaves this thread but counts.
//
// Visibility is kept short: a message whose commit takes long (a database outage) has its
// visibility extended while this drain still holds it, so a live drain never lets a held
// message expire, and a dead one costs one short visibility timeout.
import type { SQSClient } from '@aws-sdk/client-sqs';
import { isPermanentDbError, sqlState, type Db } from '../platform/db';
import type { DrainInput } from '../contract/ingest-options';
import { refreshKeyring, type Keyring } from '../pii/keyring';
import { insertChunkIsolatingRejects } from './persist';
import { changeVisibility, deleteMessages, isPermanentSqsError, MAX_PER_CALL, receiveOnce } from './sqs';
import { transformMessage } from '../pipeline/transform';
import { HeldMessages } from './held';
import {
  addPersistResults,
  emptyDrainResult,
  type DrainResult,
  type ReceivedMessage,
  type TransformedBatch,
} from '../contract/types';

export interface DrainDeps {
  sqs: SQSClient;
  queueUrl: string;
  db: Db;
  keyring: Keyring;
}

/** What to drain (lib/contract/ingest-options.ts says what each field means). */
export interface DrainOptions extends DrainInput {
  /** Recorded with each claim in the ledger (insertChunk), so a retry can count what this attempt committed. */
  attemptId?: string;
}

/** An error retrying cannot fix (a queue that does not exist, bad credentials, a refused quarantine entry). */
export class PermanentDrainError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'PermanentDrainError';
  }
}

interface Chunk extends TransformedBatch {
  ids: string[];
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

/** A chunk not yet full is handed on once its oldest message has waited this long (and a commit slot is free). */
const LINGER_MS = 100;

/** A poller that has failed this long without a success fails the drain (retried by Temporal, and visible in the Web UI). */
const RECEIVE_FAILING_MS = 15_000;

/** Backoff for errors worth retrying: 200 ms doubling to 2 s, so an outage ends within ~2 s of its end. */
const backoff = (attempt: number) => Math.min(2000, 200 * 2 ** Math.min(attempt, 4));

/**
 * Drains until the queue looks empty (every poller saw two empty receives in a row), the
 * budget or the time slice is used up, or `signal` asks to stop; then commits and deletes
 * what it holds and returns the counts. `onProgress` gets the running totals after every
 * commit. Throws PermanentDrainError for what retrying cannot fix; every other failure is
 * retried here, with the held messages kept visible to no one else meanwhile.
 */
export async function drain(
  deps: DrainDeps,
  opts: DrainOptions,
  signal: AbortSignal,
  onProgress: (result: DrainResult) => void = () => {},
): Promise<DrainResult> {
  const { sqs, queueUrl, db, keyring } = deps;
  const result = emptyDrainResult();
  const deadline = Date.now() + opts.maxSeconds * 1000;
  const visibilityMs = opts.visibilityTimeoutSeconds * 1000;
  const maxHeld = opts.chunkSize * (opts.commitsInFlight + 1);

  const held = new HeldMessages(visibilityMs);
  let buffer: Chunk = { rows: [], quarantine: [], ids: [] };
  let bufferSince = 0;
  let reserved = 0; // messages asked for by receives under way
  let emptyInARow = 0;
  let stopReason: DrainResult['endedBy'] | null = null;
  let fatal = null as Error | null; // set by fail() in callbacks: not narrowed to null

  const stopReceiving = (why: DrainResult['endedBy']) => (stopReason ??= why);
  const fail = (err: Error) => {
    fatal ??= err;
    stopReceiving('stopped');
  };
  signal.addEventListener('abort', () => stopReceiving('stopped'), { once: true });

  // Full chunks wait here for one of the commitsInFlight committers.
  const ready: Chunk[] = [];
  let committing = 0;
  let acking = 0;
  const idle: (() => void)[] = []; // pollers waiting for the held set to shrink, and the final wait
  const wake = () => idle.splice(0).forEach((resolve) => resolve());
  const waitForChange = (ms: number) => new Promise<void>((resolve) => (idle.push(resolve), setTimeout(resolve, ms)));

  /**
   * Hands the buffer to a committer when one is free, or when it is full; otherwise it keeps
   * filling, so chunks grow while the database is busy and stay small while it is not.
   */
  function flush(force = false): void {
    const free = committing + ready.length < opts.commitsInFlight;
    if (buffer.ids.length && (force || free || buffer.ids.length >= opts.chunkSize)) {
      ready.push(buffer);
      buffer = { rows: [], quarantine: [], ids: [] };
    }
    while (committing < opts.commitsInFlight && ready.length) {
      const chunk = ready.shift()!;
      committing++;
      commitThenDelete(chunk)
        .catch(fail) // an unexpected throw stops the drain instead of crashing the worker
        .finally(wake);
    }
  }

  async function commitThenDelete(chunk: Chunk): Promise<void> {
    let ok: boolean;
    try {
      ok = await persist(chunk);
    } finally {
      committing--;
    }
    // Committed: its rows are no longer needed, only the receipt handles until the deletes.
    chunk.rows = [];
    chunk.quarantine = [];
    flush();
    wake();
    // Deletes run outside the commit slots: the next commit need not wait for them.
    if (ok) await acknowledge(chunk);
  }

  /** One chunk in one transaction, retried until it commits; false when the database refuses it for good. */
  async function persist(chunk: Chunk): Promise<boolean> {
    const started = performance.now();
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const persisted = await insertChunkIsolatingRejects(db, keyring, chunk, opts.attemptId ?? null);
          Object.assign(result, addPersistResults(result, persisted));
          result.commits++;
          return true;
        } catch (err) {
          if (isPermanentDbError(err)) {
            // Only a refused quarantine entry gets here (rows are isolated): the messages stay in the queue.
            // The message names the SQLSTATE only: a database's text can quote the value it refused.
            fail(
              new PermanentDrainError(
                `The database refused a quarantine entry (SQLSTATE ${sqlState(err)}); the messages stay in the queue.`,
                'PermanentDbError',
              ),
            );
            return false;
          }
          result.persistRetries++;
          await sleep(backoff(attempt));
        }
      }
    } finally {
      result.stageMs.persist += performance.now() - started;
    }
  }

  /** Deletes a committed chunk's messages (only now: a message deleted before its commit could be lost). */
  async function acknowledge(chunk: Chunk): Promise<void> {
    acking++;
    const started = performance.now();
    try {
      const messages = held.handles(chunk.ids);
      for (let attempt = 0; ; attempt++) {
        try {
          const acked = await deleteMessages(sqs, queueUrl, messages);
          result.ackFailed += acked.failed.length;
          break;
        } catch (err) {
          // A message not deleted comes back and is deduplicated: a few tries, then let it.
          if (isPermanentSqsError(err) || attempt >= 3) {
            result.ackFailed += messages.length;
            break;
          }
          await sleep(backoff(attempt));
        }
      }
    } finally {
      held.release(chunk.ids);
      result.stageMs.acknowledge += performance.now() - started;
      acking--;
    }
    onProgress(result);
  }

  function take(messages: ReceivedMessage[]): void {
    const started = performance.now();
    const now = Date.now();
    for (const m of messages) {
      if (!held.hold(m.messageId, m.receiptHandle, now)) {
        // Redelivered while we still hold it: one outcome, deleted with the newest handle, and
        // counted as already seen (received = persisted + quarantined + already seen).
        result.alreadySeen++;
        continue;
      }
      const outcome = transformMessage(keyring, m);
      if (outcome.kind === 'row') buffer.rows.push(outcome.row);
      else buffer.quarantine.push(outcome.entry);
      if (buffer.ids.push(m.messageId) === 1) bufferSince = now;
    }
    result.stageMs.transform += performance.now() - started;
    if (buffer.ids.length >= opts.chunkSize) flush();
  }

  async function poller(): Promise<void> {
    for (let errors = 0, failingSince = 0; !stopReason;) {
      // At the end of the slice, a queue that every poller last found empty counts as empty.
      if (Date.now() >= deadline) return void stopReceiving(emptyInARow >= opts.pollers ? 'empty' : 'time');
      if (held.size >= maxHeld) {
        // Back-pressure: the commits or the deletes are behind (a slow database or queue); wait for room.
        await waitForChange(500);
        continue;
      }
      const want = Math.min(MAX_PER_CALL, opts.maxMessages - result.received - reserved);
      if (want <= 0) {
        if (reserved === 0) stopReceiving('budget');
        return;
      }
      reserved += want;
      const started = performance.now();
      let messages: ReceivedMessage[];
      try {
        await refreshKeyring(keyring); // a rotated key is used for new rows at once
        messages = await receiveOnce(sqs, queueUrl, {
          maxMessages: want,
          waitTimeSeconds: opts.waitTimeSeconds,
          visibilityTimeoutSeconds: opts.visibilityTimeoutSeconds,
        });
        errors = 0;
        failingSince = 0;
      } catch (err) {
        const e = err as Error;
        const what = `ReceiveMessage failed with ${e.name}: ${e.message}. Check SQS_QUEUE_URL, AWS_REGION and the AWS credentials.`;
        if (isPermanentSqsError(err)) return fail(new PermanentDrainError(what, e.name));
        failingSince ||= Date.now();
        if (Date.now() - failingSince > RECEIVE_FAILING_MS)
          return fail(Object.assign(new Error(`For ${RECEIVE_FAILING_MS / 1000} s: ${what}`), { name: e.name }));
        result.receiveErrors++;
        await sleep(backoff(errors++), signal);
        continue;
      } finally {
        reserved -= want;
        result.stageMs.receive += performance.now() - started;
      }
      result.received += messages.length;
      if (messages.length === 0) {
        if (++emptyInARow >= 2 * opts.pollers) stopReceiving('empty');
        continue;
      }
      emptyInARow = 0;
      take(messages);
    }
  }

  // A chunk that is not full is committed once it has waited LINGER_MS; held messages whose
  // commit runs long get their visibility extended before it ends.
  const ticker = setInterval(() => {
    if (buffer.ids.length && Date.now() - bufferSince >= LINGER_MS) flush();
    const expiring = held.takeExpiring(Date.now());
    if (expiring.length === 0) return;
    result.visibilityExtended += expiring.length;
    changeVisibility(sqs, queueUrl, expiring, opts.visibilityTimeoutSeconds).catch(() => {
      // Not extended: at worst the message comes back to someone and is deduplicated.
    });
  }, LINGER_MS);

  try {
    await Promise.all(Array.from({ length: opts.pollers }, poller));
    flush(true);
    while (committing || ready.length || acking) await waitForChange(1000);
  } finally {
    clearInterval(ticker);
  }
  if (fatal) throw fatal;
  result.endedBy = stopReason ?? 'empty';
  return result;
}
