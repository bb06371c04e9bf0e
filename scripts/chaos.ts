// `npm run chaos`: exactly-once under crashes, outages and hostile input. Sends generated
// messages (malformed, duplicate content, hostile shapes, forced redeliveries), drains them
// with worker processes through a real ingest, strikes faults when given shares of the
// queue are gone (worker SIGKILL and restart, PostgreSQL stopped, the SQS endpoint failing
// or slow, the Temporal server killed and restarted), and checks the balance: rows +
// quarantine = distinct IDs sent, no ID stored twice, the queue empty, the summary equal to
// the database. A baseline run without faults gives each fault's cost in seconds.
// See scripts/chaos/options.ts for the settings (--help).
import { ChaosUsageError, parseChaosArgs, USAGE } from './chaos/options';
import { runChaos } from './chaos/scenario';
import type { ChaosReport } from './chaos/verdict';

function print(r: ChaosReport): void {
  const f = r.faulted;
  const b = f.balance;
  const lines = [
    '',
    `Verdict: ${r.verdict.toUpperCase()}`,
    ...r.problems.map((p) => `  problem: ${p}`),
    ...r.notes.map((n) => `  note: ${n}`),
    `  messages ${r.messages} (seed ${r.seed}), distinct IDs ${b.distinctSent}, hostile ${r.hostileMessages}`,
    `  rows ${b.rows} + quarantine ${b.quarantine} = ${b.rows + b.quarantine}; ledger ${b.ledger}; stored twice ${b.storedTwice}; left in queue ${b.left.visible} visible, ${b.left.inFlight} in flight`,
    ...(f.summary
      ? [
          `  summary: persisted ${f.summary.persisted}, quarantined ${f.summary.quarantined}, already seen ${f.summary.alreadySeen}, drains ${f.summary.slices}, stop ${f.summary.stopReason}`,
        ]
      : []),
    `  forced redeliveries: ${f.proxy.redelivered} message(s) whose delete was lost; worker processes killed ${f.workerKills}, started ${f.workerStarts}`,
    `  drain ${f.drainSeconds} s${r.baseline ? ` vs ${r.baseline.drainSeconds} s without faults: faults cost ${r.costSeconds} s` : ''}`,
    ...f.strikes.map(
      (s, i) =>
        `  ${i + 1}. ${s.fault} at ${Math.round(s.share * 100)}% (depth ${s.depth.visible}+${s.depth.inFlight})${r.faultCosts ? `: cost ${r.faultCosts[i].costSeconds} s` : ''}; ${s.detail}${s.empty ? ' — EMPTY QUEUE' : ''}`,
    ),
  ];
  console.log(lines.join('\n'));
}

async function main(): Promise<number> {
  let options;
  try {
    options = parseChaosArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof ChaosUsageError) {
      console.error(err.message);
      return 3;
    }
    throw err;
  }
  if (options === 'help') {
    console.log(USAGE);
    return 0;
  }
  const report = await runChaos(options);
  if (options.json) {
    const { progress: _p, ...faulted } = report.faulted;
    const baseline = report.baseline && (({ progress: _b, ...rest }) => rest)(report.baseline);
    console.log(JSON.stringify({ ...report, faulted, baseline, options }, null, 2));
  } else print(report);
  return report.verdict === 'pass' ? 0 : report.verdict === 'fail' ? 1 : 2;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
