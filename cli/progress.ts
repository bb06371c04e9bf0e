// Progress of an ingest as people and logs want it: a live bar (percentage, rate, ETA) on a
// terminal, and otherwise a plain line now and then (at most one per `plainEveryMs`, so an
// hour's drain writes about a hundred lines, not 1,800). Pure apart from the `write`
// function it is given; time comes in as an argument, so it is tested without clocks.
import type { IngestSummary } from '../lib/contract/types';

export interface ProgressStats {
  received: number;
  /** What this run expects to receive: the queue depth at start, or maxMessages if smaller; null when unknown (0 at start). */
  total: number | null;
  /** 0..100, capped at 99 until the run has ended (more messages may arrive meanwhile); null when total is unknown. */
  percent: number | null;
  /** Messages a second since the run started. */
  rate: number;
  /** Seconds until total at the current rate; null when unknown. */
  etaSeconds: number | null;
  persisted: number;
  quarantined: number;
  alreadySeen: number;
  elapsedSeconds: number;
}

export function progressStats(p: IngestSummary, maxMessages?: number): ProgressStats {
  const elapsedSeconds = p.durationMs / 1000;
  const depth = p.queueDepthAtStart;
  const total = depth > 0 ? (maxMessages ? Math.min(depth, maxMessages) : depth) : (maxMessages ?? null);
  const finished = p.stopReason !== null;
  const rate = elapsedSeconds > 0 ? p.received / elapsedSeconds : 0;
  let percent: number | null = null;
  let etaSeconds: number | null = null;
  if (total) {
    percent = finished ? 100 : Math.min(99, Math.floor((100 * p.received) / total));
    const left = Math.max(0, total - p.received);
    etaSeconds = finished ? 0 : rate > 0 ? left / rate : null;
  }
  return {
    received: p.received,
    total,
    percent,
    rate,
    etaSeconds,
    persisted: p.persisted,
    quarantined: p.quarantined,
    alreadySeen: p.alreadySeen,
    elapsedSeconds,
  };
}

/** 75 → "1:15", 3725 → "1:02:05". */
export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

const n = (x: number) => Math.round(x).toLocaleString('en-US');

function tail(s: ProgressStats): string {
  return `${n(s.rate)} msg/s · ETA ${s.etaSeconds === null ? '?' : formatDuration(s.etaSeconds)} · persisted ${n(s.persisted)} · quarantined ${n(s.quarantined)} · already seen ${n(s.alreadySeen)}`;
}

/** `[##########··········]  50%  5,000/10,000 · 1,234 msg/s · ETA 0:04 · …` */
export function progressBar(s: ProgressStats, width = 24): string {
  const filled = s.percent === null ? 0 : Math.round((s.percent / 100) * width);
  const bar = s.percent === null ? '?'.repeat(width) : '#'.repeat(filled) + '·'.repeat(width - filled);
  const pct = s.percent === null ? '  ?%' : `${String(s.percent).padStart(3)}%`;
  return `[${bar}] ${pct}  ${n(s.received)}/${s.total === null ? '?' : n(s.total)} · ${tail(s)}`;
}

/** `progress 50% · received 5,000 of 10,000 · 1,234 msg/s · ETA 0:04 · … · 4.1 s` */
export function progressLine(s: ProgressStats): string {
  const pct = s.percent === null ? '' : `${s.percent}% · `;
  return `progress ${pct}received ${n(s.received)}${s.total === null ? '' : ` of ${n(s.total)}`} · ${tail(s)} · ${s.elapsedSeconds.toFixed(1)} s`;
}

export interface ProgressReporterOptions {
  /** A terminal: redraw one bar in place. Otherwise plain lines. */
  tty: boolean;
  /** Plain mode: at most one line this often (default 30 s). */
  plainEveryMs?: number;
  maxMessages?: number;
  /** Where text goes: the bar is written with `\r` and no newline. */
  write: (text: string) => void;
  /** Plain mode: one progress record (default: `write(progressLine(stats) + '\n')`); JSON logs pass their own. */
  line?: (stats: ProgressStats) => void;
}

/** Feed it every progress query's answer; it decides what to show. */
export class ProgressReporter {
  private lastLineAt: number | null = null;
  private drawn = false;
  constructor(private readonly o: ProgressReporterOptions) {}

  update(p: IngestSummary, nowMs: number): void {
    const stats = progressStats(p, this.o.maxMessages);
    if (this.o.tty) {
      this.o.write(`\r\x1b[K${progressBar(stats)}`);
      this.drawn = true;
      return;
    }
    if (this.lastLineAt !== null && nowMs - this.lastLineAt < (this.o.plainEveryMs ?? 30_000)) return;
    this.lastLineAt = nowMs;
    if (this.o.line) this.o.line(stats);
    else this.o.write(progressLine(stats) + '\n');
  }

  /** Ends the bar's line (terminal mode), so what follows starts on a line of its own. */
  finish(): void {
    if (this.drawn) this.o.write('\n');
    this.drawn = false;
  }
}
