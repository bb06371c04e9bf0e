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
import { isPermanentDbError, sqlState, type RawSql } from '../platform/db';
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
  /** Where chunks are written: the Prisma client's `$queryRaw` on the main thread, its driver adapter alone in a drain thread (lib/platform/db.ts). */
  db: RawSql;
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
const emptyChunk = (): Chunk => ({ rows: [], quarantine: [], ids: [] });

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
  return new StreamingDrain(deps, opts, signal, onProgress).run();
}

/** One poller's run of receive failures (reset by a success). */
interface ReceiveFailures {
  attempt: number;
  since: number;
}

/**
 * One drain, as the steps a message goes through, in reading order:
 *   run        pollers until a stop rule, then the last chunk, then wait for every commit and delete
 *   poll       one poller: back-pressure, budget, deadline, receive, count empties, take
 *   rest       a poller that found the queue empty twice in a row waits: for a message to another poller, or for all to rest
 *   receive    one ReceiveMessage call, retried with backoff; fails the drain for what retrying cannot fix
 *   take       hold each message (a redelivery counts as already seen), transform it, add it to the buffer
 *   flush      hand the buffer to a free committer (or when full); start commits while slots are free
 *   commit     persist one chunk, then (outside the commit slots) acknowledge it
 *   persist    one transaction per chunk, retried until it commits
 *   acknowledge  delete a committed chunk's messages, then report progress
 *   tick       every LINGER_MS: hand on a lingering buffer, extend the visibility of messages held long
 */
class StreamingDrain {
  private readonly result = emptyDrainResult();
  private readonly deadline: number;
  /** Messages held (received, not yet deleted) at most before the pollers wait: the commits and deletes set the pace. */
  private readonly maxHeld: number;
  private readonly held: HeldMessages;
  /** The chunk being filled, and when its first message arrived (for LINGER_MS). */
  private buffer: Chunk = emptyChunk();
  private bufferSince = 0;
  /** Messages asked for by receives under way (so the pollers together never ask for more than the budget). */
  private reserved = 0;
  private emptyInARow = 0;
  /** Pollers still polling, those of them resting (two empty receives in a row), and receives that brought messages so far. */
  private polling: number;
  private resting = 0;
  private arrivals = 0;
  private stopReason: DrainResult['endedBy'] | null = null;
  private fatal: Error | null = null;
  /** Full chunks waiting for one of the commitsInFlight committers. */
  private readonly ready: Chunk[] = [];
  private committing = 0;
  private acking = 0;
  /** Pollers waiting for the held set to shrink, and the final wait. */
  private idle: (() => void)[] = [];

  constructor(
    private readonly deps: DrainDeps,
    private readonly opts: DrainOptions,
    private readonly signal: AbortSignal,
    private readonly onProgress: (result: DrainResult) => void,
  ) {
    this.deadline = Date.now() + opts.maxSeconds * 1000;
    this.polling = opts.pollers;
    this.maxHeld = opts.chunkSize * (opts.commitsInFlight + 1);
    this.held = new HeldMessages(opts.visibilityTimeoutSeconds * 1000);
    signal.addEventListener('abort', () => this.stopReceiving('stopped'), { once: true });
  }

  async run(): Promise<DrainResult> {
    const ticker = setInterval(() => this.tick(), LINGER_MS);
    try {
      await Promise.all(Array.from({ length: this.opts.pollers }, () => this.poll()));
      this.flush(true);
      while (this.committing || this.ready.length || this.acking) await this.waitForChange(1000);
    } finally {
      clearInterval(ticker);
    }
    if (this.fatal) throw this.fatal;
    this.result.endedBy = this.stopReason ?? 'empty';
    return this.result;
  }

  private async poll(): Promise<void> {
    try {
      await this.pollUntilStopped();
    } finally {
      this.polling--;
      this.stopIfAllResting();
    }
  }

  private async pollUntilStopped(): Promise<void> {
    const failures: ReceiveFailures = { attempt: 0, since: 0 };
    // This poller's empty receives since any poller last got messages: counted at `arrivals`,
    // void once another receive has brought some.
    let empties = 0;
    let arrivals = this.arrivals;
    const emptiesNow = () => {
      if (arrivals !== this.arrivals) [arrivals, empties] = [this.arrivals, 0];
      return empties;
    };
    while (!this.stopReason) {
      // At the end of the slice, a queue that every poller last found empty counts as empty.
      if (Date.now() >= this.deadline) return void this.stopReceiving(this.emptyInARow >= this.opts.pollers ? 'empty' : 'time');
      if (emptiesNow() >= 2) {
        await this.rest();
        continue;
      }
      if (this.held.size >= this.maxHeld) {
        // Back-pressure: the commits or the deletes are behind (a slow database or queue); wait for room.
        await this.waitForChange(500);
        continue;
      }
      const want = Math.min(MAX_PER_CALL, this.opts.maxMessages - this.result.received - this.reserved);
      if (want <= 0) {
        if (this.reserved === 0) this.stopReceiving('budget');
        return;
      }
      const messages = await this.receive(want, failures);
      if (messages === null) continue; // failed: backed off, or the drain is failing
      this.result.received += messages.length;
      if (messages.length === 0) {
        empties = emptiesNow() + 1;
        this.emptyInARow++;
        continue;
      }
      this.emptyInARow = 0;
      this.arrivals++;
      if (this.resting) this.wake(); // the queue was not empty after all: resting pollers poll again
      this.take(messages);
    }
  }

  /**
   * Waits until another poller gets messages (then this one polls again) or every poller
   * rests (the queue is empty: the drain stops). A resting poller has no receive under way,
   * so the drain ends as soon as the last poller's second empty receive comes back, instead of
   * waiting out one more long poll of every other poller.
   */
  private async rest(): Promise<void> {
    const arrivals = this.arrivals;
    this.resting++;
    this.stopIfAllResting();
    while (!this.stopReason && this.arrivals === arrivals && Date.now() < this.deadline) await this.waitForChange(1000);
    this.resting--;
  }

  private stopIfAllResting(): void {
    if (this.polling > 0 && this.resting === this.polling) this.stopReceiving('empty');
  }

  /** One receive of up to `want` messages; null after a failure (backed off, or the drain failed for good). */
  private async receive(want: number, failures: ReceiveFailures): Promise<ReceivedMessage[] | null> {
    const { sqs, queueUrl, keyring } = this.deps;
    this.reserved += want;
    const started = performance.now();
    try {
      await refreshKeyring(keyring); // a rotated key is used for new rows at once
      const messages = await receiveOnce(sqs, queueUrl, {
        maxMessages: want,
        waitTimeSeconds: this.opts.waitTimeSeconds,
        visibilityTimeoutSeconds: this.opts.visibilityTimeoutSeconds,
      });
      failures.attempt = 0;
      failures.since = 0;
      return messages;
    } catch (err) {
      const e = err as Error;
      const what = `ReceiveMessage failed with ${e.name}: ${e.message}. Check SQS_QUEUE_URL, AWS_REGION and the AWS credentials.`;
      if (isPermanentSqsError(err)) return (this.fail(new PermanentDrainError(what, e.name)), null);
      failures.since ||= Date.now();
      if (Date.now() - failures.since > RECEIVE_FAILING_MS)
        return (this.fail(Object.assign(new Error(`For ${RECEIVE_FAILING_MS / 1000} s: ${what}`), { name: e.name })), null);
      this.result.receiveErrors++;
      await sleep(backoff(failures.attempt++), this.signal);
      return null;
    } finally {
      this.reserved -= want;
      this.result.stageMs.receive += performance.now() - started;
    }
  }

  private take(messages: ReceivedMessage[]): void {
    const started = performance.now();
    const now = Date.now();
    for (const m of messages) {
      if (!this.held.hold(m.messageId, m.receiptHandle, now)) {
        // Redelivered while we still hold it: one outcome, deleted with the newest handle, and
        // counted as already seen (received = persisted + quarantined + already seen).
        this.result.alreadySeen++;
        continue;
      }
      const outcome = transformMessage(this.deps.keyring, m);
      if (outcome.kind === 'row') this.buffer.rows.push(outcome.row);
      else this.buffer.quarantine.push(outcome.entry);
      if (this.buffer.ids.push(m.messageId) === 1) this.bufferSince = now;
    }
    this.result.stageMs.transform += performance.now() - started;
    if (this.buffer.ids.length >= this.opts.chunkSize) this.flush();
  }

  /**
   * Hands the buffer to a committer when one is free, or when it is full; otherwise it keeps
   * filling, so chunks grow while the database is busy and stay small while it is not.
   */
  private flush(force = false): void {
    const { commitsInFlight, chunkSize } = this.opts;
    const free = this.committing + this.ready.length < commitsInFlight;
    if (this.buffer.ids.length && (force || free || this.buffer.ids.length >= chunkSize)) {
      this.ready.push(this.buffer);
      this.buffer = emptyChunk();
    }
    while (this.committing < commitsInFlight && this.ready.length) {
      const chunk = this.ready.shift()!;
      this.committing++;
      this.commit(chunk)
        .catch((err: Error) => this.fail(err)) // an unexpected throw stops the drain instead of crashing the worker
        .finally(() => this.wake());
    }
  }

  private async commit(chunk: Chunk): Promise<void> {
    let ok: boolean;
    try {
      ok = await this.persist(chunk);
    } finally {
      this.committing--;
    }
    // Committed: its rows are no longer needed, only the receipt handles until the deletes.
    chunk.rows = [];
    chunk.quarantine = [];
    this.flush();
    this.wake();
    // Deletes run outside the commit slots: the next commit need not wait for them.
    if (ok) await this.acknowledge(chunk);
  }

  /** One chunk in one transaction, retried until it commits; false when the database refuses it for good. */
  private async persist(chunk: Chunk): Promise<boolean> {
    const { db, keyring } = this.deps;
    const started = performance.now();
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const persisted = await insertChunkIsolatingRejects(db, keyring, chunk, this.opts.attemptId ?? null);
          Object.assign(this.result, addPersistResults(this.result, persisted));
          this.result.commits++;
          return true;
        } catch (err) {
          if (isPermanentDbError(err)) {
            // Only a refused quarantine entry gets here (rows are isolated): the messages stay in the queue.
            // The message names the SQLSTATE only: a database's text can quote the value it refused.
            this.fail(
              new PermanentDrainError(
                `The database refused a quarantine entry (SQLSTATE ${sqlState(err)}); the messages stay in the queue.`,
                'PermanentDbError',
              ),
            );
            return false;
          }
          this.result.persistRetries++;
          await sleep(backoff(attempt));
        }
      }
    } finally {
      this.result.stageMs.persist += performance.now() - started;
    }
  }

  /** Deletes a committed chunk's messages (only now: a message deleted before its commit could be lost). */
  private async acknowledge(chunk: Chunk): Promise<void> {
    const { sqs, queueUrl } = this.deps;
    this.acking++;
    const started = performance.now();
    try {
      const messages = this.held.handles(chunk.ids);
      for (let attempt = 0; ; attempt++) {
        try {
          const acked = await deleteMessages(sqs, queueUrl, messages);
          this.result.ackFailed += acked.failed.length;
          break;
        } catch (err) {
          // A message not deleted comes back and is deduplicated: a few tries, then let it.
          if (isPermanentSqsError(err) || attempt >= 3) {
            this.result.ackFailed += messages.length;
            break;
          }
          await sleep(backoff(attempt));
        }
      }
    } finally {
      this.held.release(chunk.ids);
      this.result.stageMs.acknowledge += performance.now() - started;
      this.acking--;
    }
    this.onProgress(this.result);
  }

  /**
   * A chunk that is not full is committed once it has waited LINGER_MS; held messages whose
   * commit runs long get their visibility extended before it ends.
   */
  private tick(): void {
    if (this.buffer.ids.length && Date.now() - this.bufferSince >= LINGER_MS) this.flush();
    const expiring = this.held.takeExpiring(Date.now());
    if (expiring.length === 0) return;
    this.result.visibilityExtended += expiring.length;
    const { sqs, queueUrl } = this.deps;
    changeVisibility(sqs, queueUrl, expiring, this.opts.visibilityTimeoutSeconds).catch(() => {
      // Not extended: at worst the message comes back to someone and is deduplicated.
    });
  }

  private stopReceiving(why: DrainResult['endedBy']): void {
    this.stopReason ??= why;
    this.wake(); // resting pollers and the final wait see it at once
  }

  private fail(err: Error): void {
    this.fatal ??= err;
    this.stopReceiving('stopped');
  }

  private wake(): void {
    this.idle.splice(0).forEach((resolve) => resolve());
  }

  private waitForChange(ms: number): Promise<void> {
    return new Promise<void>((resolve) => (this.idle.push(resolve), setTimeout(resolve, ms)));
  }
}
