// The verdict of a chaos run: the balance checked (rows + quarantine = distinct IDs sent,
// the ledger, no ID stored twice, the queue empty, hostile bodies quarantined with their
// reason, the summary equal to the database), pass, fail or inconclusive, and each fault's
// cost in seconds against the baseline run.
import { round } from './common';
import type { ChaosOptions, Fault } from './options';
import type { IngestSummary } from '../../lib/contract/types';
import type { Balance } from '../harness';
import type { Strike } from './faults';
import type { SqsProxy } from './proxy';

/** What one run of the scenario saw: what the verdict judges. */
export interface RunResult {
  drainSeconds: number;
  summary: IngestSummary | null;
  error: string | null;
  balance: Balance;
  strikes: Strike[];
  /** (seconds since start, share of the queue gone), sampled. */
  progress: [number, number][];
  hostile: { total: number; wrong: { kind: string; reason: string; got: string[] | null }[] };
  proxy: ReturnType<SqsProxy['stats']>;
  workerStarts: number;
  workerKills: number;
  /** Failed starts of replacement workers (each retried, as a process supervisor would). */
  startFailures: string[];
  /** Replacement workers that never started. */
  neverStarted: string[];
}

export type Verdict = 'pass' | 'fail' | 'inconclusive';

export interface FaultCost {
  fault: Fault;
  share: number;
  /** Seconds from this strike to the next (or the end), less the baseline's time over the same shares; null for a strike on an empty queue. */
  costSeconds: number | null;
}

export interface ChaosReport {
  verdict: Verdict;
  problems: string[];
  notes: string[];
  messages: number;
  seed: number;
  distinctIds: number;
  hostileMessages: number;
  faulted: RunResult;
  baseline: RunResult | null;
  costSeconds: number | null;
  faultCosts: FaultCost[] | null;
  summaryVsDatabase: { persisted: number; quarantined: number } | null;
}

/** Seconds the baseline took to reach a share of the queue gone. */
function timeAt(progress: [number, number][], share: number, end: number): number {
  const hit = progress.find(([, g]) => g >= share);
  return hit ? hit[0] : end;
}

export function judge(o: ChaosOptions, faulted: RunResult, baseline: RunResult | null): ChaosReport {
  const problems: string[] = [];
  const notes: string[] = [];
  const b = faulted.balance;
  for (const f of faulted.neverStarted) problems.push(`a replacement worker never started: ${f}`);
  if (faulted.startFailures.length) {
    notes.push(
      `${faulted.startFailures.length} start(s) of a replacement worker failed and were retried; the last said: ${faulted.startFailures[faulted.startFailures.length - 1].split('\n').slice(-2).join(' ')}`,
    );
  }
  if (faulted.error) problems.push(`the ingest did not finish: ${faulted.error}`);
  if (b.rows + b.quarantine !== b.distinctSent)
    problems.push(
      `rows (${b.rows}) + quarantine (${b.quarantine}) = ${b.rows + b.quarantine}, but ${b.distinctSent} distinct message IDs were sent`,
    );
  if (b.ledger !== b.distinctSent) problems.push(`the ledger holds ${b.ledger} IDs for ${b.distinctSent} sent`);
  if (b.storedTwice) problems.push(`${b.storedTwice} message ID(s) stored twice`);
  if (b.left.visible + b.left.inFlight)
    problems.push(`the queue is not empty: ${b.left.visible} visible, ${b.left.inFlight} in flight`);
  if (faulted.hostile.wrong.length) {
    const kinds = [
      ...new Set(
        faulted.hostile.wrong.map(
          (w) => `${w.kind} (wanted ${w.reason}, got ${w.got ? w.got.join(',') : 'no quarantine entry'})`,
        ),
      ),
    ];
    problems.push(
      `${faulted.hostile.wrong.length} of ${faulted.hostile.total} hostile message(s) not quarantined with their reason: ${kinds.slice(0, 5).join('; ')}`,
    );
  }
  const s = faulted.summary;
  let summaryVsDatabase: ChaosReport['summaryVsDatabase'] = null;
  if (s) {
    if (s.stopReason !== 'queue_empty') problems.push(`the ingest stopped with ${s.stopReason}, not queue_empty`);
    summaryVsDatabase = { persisted: b.rows - s.persisted, quarantined: b.quarantine - s.quarantined };
    const { persisted, quarantined } = summaryVsDatabase;
    // Exact since each claim records its drain attempt: a retry counts a dead attempt's commits from the ledger.
    if (persisted || quarantined) {
      problems.push(
        `the workflow's summary differs from the database (rows ${b.rows} vs ${s.persisted}, quarantine ${b.quarantine} vs ${s.quarantined})`,
      );
    }
  }
  if (baseline && !baseline.balance.balanced)
    problems.push(`the baseline run (no faults) does not balance: ${JSON.stringify(baseline.balance)}`);
  const empty = faulted.strikes.filter((x) => x.empty);
  if (faulted.strikes.length < o.faults.length)
    problems.push(`only ${faulted.strikes.length} of ${o.faults.length} faults struck before the run ended`);

  let faultCosts: FaultCost[] | null = null;
  let costSeconds: number | null = null;
  if (baseline) {
    costSeconds = round(faulted.drainSeconds - baseline.drainSeconds);
    const st = faulted.strikes;
    faultCosts = st.map((x, i) => {
      const nextT = i + 1 < st.length ? st[i + 1].struckAt : faulted.drainSeconds;
      const nextShare = i + 1 < st.length ? st[i + 1].share : 1;
      const base =
        timeAt(baseline.progress, nextShare, baseline.drainSeconds) - timeAt(baseline.progress, x.share, baseline.drainSeconds);
      return { fault: x.fault, share: x.share, costSeconds: x.empty ? null : round(nextT - x.struckAt - base) };
    });
  }
  const verdict: Verdict = problems.length ? 'fail' : empty.length ? 'inconclusive' : 'pass';
  if (empty.length && !problems.length)
    notes.push(`${empty.length} fault(s) struck an empty queue and tested nothing: ${empty.map((x) => x.fault).join(', ')}`);
  return {
    verdict,
    problems,
    notes,
    messages: o.messages,
    seed: o.seed,
    distinctIds: b.distinctSent,
    hostileMessages: faulted.hostile.total,
    faulted,
    baseline,
    costSeconds,
    faultCosts,
    summaryVsDatabase,
  };
}
