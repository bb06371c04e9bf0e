// The fault injection of a chaos run: each fault struck once its share of the queue is gone
// and then undone (a worker SIGKILLed and a replacement started as a process supervisor
// would, PostgreSQL paused, the SQS endpoint slowed, failing or resetting through the proxy,
// the Temporal server killed and restarted on its SQLite file), and what each strike found.
import type { SQSClient } from '@aws-sdk/client-sqs';
import { getApproximateCounts } from '../../lib/ingest/sqs';
import type { QueueDepth } from '../../lib/contract/types';
import { startWorkerProcess, type WorkerProcess } from '../harness';
import { round, sleep, type Log } from './common';
import type { ChaosOptions, Fault } from './options';
import type { SqsProxy } from './proxy';
import type { ChaosServices } from './services';

export interface Strike {
  fault: Fault;
  /** The share it was to strike at, and the share gone when it did. */
  at: number;
  share: number;
  /** Queue depth when it struck (visible + in flight). */
  depth: QueueDepth;
  /** Seconds since the ingest started. */
  struckAt: number;
  recoveredAt: number;
  detail: string;
  /** It struck an empty queue: it tested nothing. */
  empty: boolean;
}

/** The run's worker processes: the live ones (a kill takes one out, its replacement joins once it polls), and what became of them. */
export interface RunWorkers {
  live: WorkerProcess[];
  starts: number;
  kills: number;
  /** Replacements still starting. */
  starting: Promise<void>[];
  /** Failed starts of replacement workers (each retried, as a process supervisor would). */
  startFailures: string[];
  /** Replacement workers that never started. */
  neverStarted: string[];
}

export interface StrikeInput {
  faults: Fault[];
  /** The share of the queue gone at which each fault is to strike. */
  at: number[];
  services: ChaosServices;
  options: ChaosOptions;
  proxy: SqsProxy;
  /** The runner's own client (straight to the emulator), the run's queue, and how many messages were sent to it. */
  admin: SQSClient;
  queueUrl: string;
  total: number;
  /** The workers' environment, for their replacements. */
  env: NodeJS.ProcessEnv;
  deadline: number;
  rnd: () => number;
  workers: RunWorkers;
  /** The monitor's last reading of the queue, and whether the ingest is over. */
  watch: () => { gone: number; depth: QueueDepth; done: boolean };
  /** Seconds since the ingest started. */
  since: () => number;
  log: Log;
}

/** Each fault in turn, struck and undone; resolves with the strikes once the last is over. */
export async function strikeFaults({
  faults,
  at,
  services,
  options: o,
  proxy,
  admin,
  queueUrl,
  total,
  env,
  deadline,
  rnd,
  workers,
  watch,
  since,
  log,
}: StrikeInput): Promise<Strike[]> {
  const strikes: Strike[] = [];
  for (let i = 0; i < faults.length; i++) {
    while (watch().gone < at[i] && !watch().done && Date.now() < deadline) await sleep(50);
    const d = await getApproximateCounts(admin, queueUrl).catch(() => watch().depth);
    const share = 1 - (d.visible + d.inFlight) / total;
    const struckAt = since();
    log(
      `  fault ${i + 1}/${faults.length} ${faults[i]} at ${Math.round(share * 100)}% gone (wanted ${Math.round(at[i] * 100)}%): queue depth ${d.visible} visible + ${d.inFlight} in flight`,
    );
    let detail = '';
    switch (faults[i]) {
      case 'kill': {
        // Among the live workers; the replacement starts meanwhile, and the next fault need not wait for it.
        for (let w = 0; !workers.live.length && w < 1200 && Date.now() < deadline; w++) await sleep(50);
        const k = Math.floor(rnd() * workers.live.length);
        const [victim] = workers.live.splice(k, 1);
        await victim.kill('SIGKILL');
        workers.kills++;
        const killedAt = since();
        workers.starting.push(
          superviseStart(env, deadline, (msg) => {
            workers.startFailures.push(msg);
            log(
              `    replacement worker failed to start (${msg.split('\n').pop()}); starting it again, as a process supervisor would`,
            );
          }).then(
            (w) => {
              workers.live.push(w);
              workers.starts++;
              log(`    replacement worker pid ${w.pid} polling ${round(since() - killedAt)} s after the kill`);
            },
            (err: Error) => void workers.neverStarted.push(err.message),
          ),
        );
        detail = `worker pid ${victim.pid} (of ${workers.live.length + 1} live) SIGKILLed; a replacement started`;
        break;
      }
      case 'pg':
        await services.pg.pause();
        await sleep(o.pgDownSeconds * 1000);
        await services.pg.resume();
        detail = `PostgreSQL stopped for ${o.pgDownSeconds} s`;
        break;
      case 'sqs':
        proxy.setMode(o.sqsMode, o.sqsDelayMs);
        await sleep(o.sqsWindowSeconds * 1000);
        proxy.setMode('pass');
        detail = `SQS endpoint ${o.sqsMode === 'slow' ? `slowed by ${o.sqsDelayMs} ms a request` : o.sqsMode === 'fail' ? 'answering 500' : 'resetting connections'} for ${o.sqsWindowSeconds} s`;
        break;
      case 'temporal':
        await services.killTemporal(o.temporalDownSeconds * 1000);
        detail = `Temporal server SIGKILLed, restarted on its SQLite file after ${o.temporalDownSeconds} s`;
        break;
    }
    const recoveredAt = since();
    log(`    ${detail}; back after ${round(recoveredAt - struckAt)} s`);
    strikes.push({
      fault: faults[i],
      at: at[i],
      share: round(share, 4),
      depth: d,
      struckAt: round(struckAt, 2),
      recoveredAt: round(recoveredAt, 2),
      detail,
      empty: d.visible + d.inFlight === 0,
    });
  }
  return strikes;
}

/** worker.ts started again until it polls (it exits when, say, PostgreSQL is away at its start), every 2 s, 15 times at most. */
async function superviseStart(env: NodeJS.ProcessEnv, deadline: number, failed: (msg: string) => void): Promise<WorkerProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startWorkerProcess(env);
    } catch (err) {
      const lines = (err as Error).message
        .split('\n')
        .filter(
          (l) =>
            l.trim() &&
            !/AWS SDK for JavaScript|first week of January 2027|node >=22|To continue receiving|security updates please|a\.co\/|trace-warnings/.test(
              l,
            ),
        );
      const msg = lines.slice(-3).join('\n');
      if (attempt >= 15 || Date.now() > deadline) throw new Error(msg);
      failed(msg);
      await sleep(2000);
    }
  }
}
