// The drain threads of one worker process, started once and kept: each drain (one ingest
// activity) is split across all of them, every thread running its own pollers, commits
// and deletes (lib/ingest/drain-thread.ts). With 0 threads the drain runs on the main thread.
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Config } from '../platform/config';
import { drain, PermanentDrainError, type DrainDeps, type DrainOptions } from './drain';
import type { FromThread, ThreadData, ToThread } from './drain-thread';
import { addDrainResults, emptyDrainResult, type DrainResult } from '../contract/types';
import { shares } from '../contract/ingest-options';

interface Part {
  resolve(result: DrainResult): void;
  reject(err: Error): void;
  onProgress(result: DrainResult): void;
}

/** Under ts-node (development, tests) a thread compiles the TypeScript it loads the same way. */
const TYPESCRIPT_IN_THREAD = `require('ts-node').register({ transpileOnly: true });`;

/**
 * A drain thread's young generation, MiB (with V8's default its new space reached 32 MiB,
 * measured). The thread allocates fast but keeps little (a message lives from its receive to
 * its delete), so a smaller one costs more frequent, short scavenges. Measured on 2 cores,
 * 50,000 messages: worker peak RSS 281-296 MiB against 290-300 with the default, throughput
 * within the runs' noise (README, Performance).
 */
const DRAIN_THREAD_YOUNG_GENERATION_MB = 24;

class DrainThread {
  readonly ready: Promise<void>;
  private readonly parts = new Map<number, Part>();
  dead: Error | null = null;
  private readonly worker: Worker;

  constructor(data: ThreadData) {
    const file = path.join(__dirname, `drain-thread${path.extname(__filename)}`);
    const code = file.endsWith('.ts')
      ? `${TYPESCRIPT_IN_THREAD}\nrequire(${JSON.stringify(file)});`
      : `require(${JSON.stringify(file)});`;
    // The environment as this module sees it (a test runner may give modules a copy of their own).
    this.worker = new Worker(code, {
      eval: true,
      workerData: data,
      env: process.env,
      resourceLimits: { maxYoungGenerationSizeMb: DRAIN_THREAD_YOUNG_GENERATION_MB },
    });
    this.ready = new Promise((resolve, reject) => {
      this.worker.on('message', (m: FromThread) => {
        if (m.type === 'ready') return resolve();
        if (m.type === 'init_failed')
          return reject(new PermanentDrainError(`A drain thread could not start: ${m.message}`, 'DrainThreadInit'));
        const part = this.parts.get(m.id);
        if (!part) return;
        if (m.type === 'progress') return part.onProgress(m.result);
        this.parts.delete(m.id);
        if (m.type === 'done') part.resolve(m.result);
        else
          part.reject(
            m.error.permanent
              ? new PermanentDrainError(m.error.message, m.error.code)
              : Object.assign(new Error(m.error.message), { name: m.error.code }),
          );
      });
      const die = (err: Error) => {
        this.dead ??= err;
        reject(err);
        for (const part of this.parts.values()) part.reject(err);
        this.parts.clear();
      };
      this.worker.on('error', die);
      this.worker.on('exit', (code) => die(new Error(`A drain thread exited (code ${code})`)));
    });
  }

  run(id: number, opts: DrainOptions, part: Part): void {
    this.parts.set(id, part);
    this.post({ type: 'drain', id, opts });
  }

  post(m: ToThread): void {
    if (!this.dead) this.worker.postMessage(m);
  }

  async close(): Promise<void> {
    if (this.dead) return;
    const exited = new Promise((resolve) => this.worker.once('exit', resolve));
    this.post({ type: 'close' });
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())]);
    await this.worker.terminate();
  }
}

/** Several parts' results as one: counts added; empty only if every part found the queue empty. */
export function combineResults(parts: DrainResult[], budget: number): DrainResult {
  const sum = parts.reduce(addDrainResults, emptyDrainResult());
  const ends = parts.map((p) => p.endedBy);
  sum.endedBy = ends.includes('stopped')
    ? 'stopped'
    : sum.received >= budget
      ? 'budget'
      : ends.every((e) => e === 'empty')
        ? 'empty'
        : 'time';
  return sum;
}

export class DrainPool {
  private threads: DrainThread[] = [];
  private nextId = 1;

  /** `threads` 0: drains run on this thread with `local`. */
  constructor(
    private readonly config: Config,
    private readonly size: number,
    private readonly local: DrainDeps,
    private readonly connectionsPerThread = 4,
  ) {}

  /** Starts the threads that are not running (a thread that died is replaced). */
  async start(): Promise<void> {
    this.threads = this.threads.filter((t) => !t.dead);
    while (this.threads.length < this.size)
      this.threads.push(new DrainThread({ config: this.config, maxConnections: this.connectionsPerThread }));
    await Promise.all(this.threads.map((t) => t.ready));
  }

  async run(opts: DrainOptions, signal: AbortSignal, onProgress: (result: DrainResult) => void = () => {}): Promise<DrainResult> {
    if (this.size === 0) return drain(this.local, opts, signal, onProgress);
    await this.start();
    const budgets = shares(opts.maxMessages, this.threads.length);
    const latest: DrainResult[] = budgets.map(() => emptyDrainResult());
    const ids: [DrainThread, number][] = [];
    const results = this.threads.map((thread, i) => {
      if (budgets[i] === 0) return Promise.resolve({ ...emptyDrainResult(), endedBy: 'budget' as const });
      const id = this.nextId++;
      ids.push([thread, id]);
      return new Promise<DrainResult>((resolve, reject) =>
        thread.run(
          id,
          { ...opts, maxMessages: budgets[i] },
          {
            resolve,
            reject,
            onProgress: (r) => {
              latest[i] = r;
              onProgress(combineResults(latest, opts.maxMessages));
            },
          },
        ),
      );
    });
    const stop = () => ids.forEach(([thread, id]) => thread.post({ type: 'stop', id }));
    signal.addEventListener('abort', stop, { once: true });
    try {
      // Every part settles before this returns (a failed one stops the others), so no thread
      // still holds messages of this drain when the activity ends.
      const settled = await Promise.allSettled(results.map((p) => p.catch((err: Error) => (stop(), Promise.reject(err)))));
      const failed = settled.find((s) => s.status === 'rejected');
      if (failed) throw failed.reason;
      return combineResults(
        settled.map((s) => (s as PromiseFulfilledResult<DrainResult>).value),
        opts.maxMessages,
      );
    } finally {
      signal.removeEventListener('abort', stop);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.close()));
    this.threads = [];
  }
}
