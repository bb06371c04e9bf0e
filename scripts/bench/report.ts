// The benchmark's figures put together: each worker count's balanced runs as median, min and
// max, and the summary lines it prints.

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
export const spread = (xs: number[]) => [Math.min(...xs), Math.max(...xs)];
export const round = (x: number, d = 0) => Math.round(x * 10 ** d) / 10 ** d;

type Stat = { median: number; min: number; max: number } | null;

/** Per worker count, over its balanced runs only. */
export function summarize(figures: Record<string, unknown>[], workerCounts: number[], runs: number) {
  return workerCounts.map((workers) => {
    const ok = figures.filter((f) => f.workers === workers && f.balanced) as Record<string, number>[];
    const pick = (k: string) => ok.map((f) => f[k]).filter((v) => typeof v === 'number');
    const stat = (k: string) =>
      pick(k).length ? { median: round(median(pick(k)), 3), min: spread(pick(k))[0], max: spread(pick(k))[1] } : null;
    return {
      workers,
      counted: ok.length,
      of: runs,
      ratio: stat('ratio'),
      ratioToBare: stat('ratioToBare'),
      barePerSecond: stat('barePerSecond'),
      cpuRatioToBare: stat('cpuRatioToBare'),
      rawDrainPerSecond: stat('rawDrainPerSecond'),
      pipelinePerSecond: stat('pipelinePerSecond'),
      persistRatio: stat('persistRatio'),
      workerPeakRssMiB: stat('workerPeakRssMiB'),
      historyBytesPer10k: stat('historyBytesPer10k'),
      historyEventsPer10k: stat('historyEventsPer10k'),
    };
  });
}

export function printSummary(summary: ReturnType<typeof summarize>, messages: number): void {
  console.log('');
  for (const s of summary) {
    const fmt = (x: Stat, d = 0) => (x ? `${round(x.median, d)} (${round(x.min, d)}–${round(x.max, d)})` : 'n/a');
    console.log(
      `${s.workers} worker(s), ${s.counted}/${s.of} balanced runs of ${messages}: pipeline/bare pipeline ${fmt(s.ratioToBare, 3)}; pipeline/raw drain ${fmt(s.ratio, 3)}; raw drain ${fmt(s.rawDrainPerSecond)} msg/s; bare pipeline ${fmt(s.barePerSecond)} msg/s; CPU per message pipeline/bare ${fmt(s.cpuRatioToBare, 3)}; pipeline ${fmt(s.pipelinePerSecond)} msg/s; persist/raw PG ${fmt(s.persistRatio, 3)}; worker peak RSS ${fmt(s.workerPeakRssMiB)} MiB; history ${fmt(s.historyBytesPer10k)} bytes and ${fmt(s.historyEventsPer10k, 1)} events per 10,000 messages`,
    );
  }
}
