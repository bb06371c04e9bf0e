import { emptySummary, type IngestSummary } from '../../workflows/ingest';
import { formatDuration, progressBar, progressLine, ProgressReporter, progressStats } from '../../cli/progress';

const summary = (over: Partial<IngestSummary>): IngestSummary => ({
  ...emptySummary('2026-01-01T00:00:00.000Z', 10_000),
  ...over,
});

describe('progressStats', () => {
  it('computes percentage, rate and ETA from the depth at start', () => {
    const s = progressStats(summary({ received: 2500, persisted: 2400, quarantined: 100, durationMs: 5000 }));
    expect(s).toMatchObject({ total: 10_000, percent: 25, rate: 500, etaSeconds: 15, persisted: 2400, quarantined: 100 });
  });
  it('caps at 99% while running (more may arrive) and says 100% only at the end', () => {
    expect(progressStats(summary({ received: 12_000, durationMs: 1000 })).percent).toBe(99);
    expect(progressStats(summary({ received: 12_000, durationMs: 1000, stopReason: 'queue_empty' }))).toMatchObject({
      percent: 100,
      etaSeconds: 0,
    });
  });
  it('uses maxMessages when smaller than the queue, and knows nothing without either', () => {
    expect(progressStats(summary({ received: 50, durationMs: 1000 }), 100)).toMatchObject({
      total: 100,
      percent: 50,
      etaSeconds: 1,
    });
    expect(progressStats(summary({ queueDepthAtStart: 0, received: 50, durationMs: 1000 }))).toMatchObject({
      total: null,
      percent: null,
      etaSeconds: null,
    });
  });
  it('has no ETA before anything was received', () => {
    expect(progressStats(summary({ received: 0, durationMs: 0 }))).toMatchObject({ rate: 0, etaSeconds: null, percent: 0 });
  });
});

describe('rendering', () => {
  it('formats durations', () => {
    expect(formatDuration(0)).toBe('0:00');
    expect(formatDuration(75)).toBe('1:15');
    expect(formatDuration(3725)).toBe('1:02:05');
  });
  it('draws a bar with percentage, counts, rate and ETA', () => {
    const bar = progressBar(progressStats(summary({ received: 5000, durationMs: 4000 })), 10);
    expect(bar).toBe('[#####·····]  50%  5,000/10,000 · 1,250 msg/s · ETA 0:04 · persisted 0 · quarantined 0 · already seen 0');
  });
  it('writes a plain line', () => {
    expect(progressLine(progressStats(summary({ received: 5000, durationMs: 4000 })))).toBe(
      'progress 50% · received 5,000 of 10,000 · 1,250 msg/s · ETA 0:04 · persisted 0 · quarantined 0 · already seen 0 · 4.0 s',
    );
  });
});

describe('ProgressReporter', () => {
  it('on a terminal redraws one line in place and ends it with a newline', () => {
    const out: string[] = [];
    const r = new ProgressReporter({ tty: true, write: (t) => out.push(t) });
    r.update(summary({ received: 1, durationMs: 1000 }), 0);
    r.update(summary({ received: 2, durationMs: 2000 }), 1000);
    r.finish();
    expect(out).toHaveLength(3);
    expect(out.slice(0, 2).every((t) => t.startsWith('\r\x1b[K[') && !t.includes('\n'))).toBe(true);
    expect(out[2]).toBe('\n');
  });
  it('otherwise writes at most one line per interval: an hour of 2 s polls gives 121 lines, not 1,800', () => {
    const out: string[] = [];
    const r = new ProgressReporter({ tty: false, plainEveryMs: 30_000, write: (t) => out.push(t) });
    for (let t = 0; t <= 3_600_000; t += 2000) r.update(summary({ received: t / 100, durationMs: t }), t);
    r.finish();
    expect(out).toHaveLength(121);
    expect(out.every((l) => l.startsWith('progress ') && l.endsWith('\n'))).toBe(true);
  });
  it('hands plain records to a custom sink (JSON logs)', () => {
    const records: unknown[] = [];
    const r = new ProgressReporter({ tty: false, write: () => {}, line: (s) => records.push(s) });
    r.update(summary({ received: 10, durationMs: 1000 }), 0);
    expect(records).toEqual([expect.objectContaining({ received: 10, total: 10_000, percent: 0 })]);
  });
});
