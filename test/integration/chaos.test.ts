// A small chaos scenario, run through `npm run chaos`'s own command (scripts/chaos.ts, in a
// process of its own, as embedded PostgreSQL cannot load inside jest): a few thousand
// messages (malformed, duplicate content, hostile shapes, forced redeliveries), two worker
// processes on one task queue, one of them SIGKILLed, PostgreSQL stopped for a few seconds,
// the SQS endpoint failing for a few seconds; on services of its own (the database must be
// stopped, which the shared test services cannot be). It asserts the balance, never a time.
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { ChaosReport } from '../../scripts/chaos/verdict';

jest.setTimeout(300_000);

function chaos(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join('scripts', 'chaos.ts'), ...args], {
      cwd: path.join(__dirname, '..', '..'),
      // A clean environment, as the suite's own services get (a configured Temporal CLI is kept).
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        DATA_DIR: path.join(__dirname, '..', '..', '.data'),
        ...(process.env.TEMPORAL_CLI_PATH && { TEMPORAL_CLI_PATH: process.env.TEMPORAL_CLI_PATH }),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('chaos: exactly once under a worker kill, a database stop and an SQS outage', () => {
  it('every message ends once, as a row or a quarantine entry with its reason, and the queue is empty', async () => {
    const { code, stdout, stderr } = await chaos([
      '--messages',
      '4000',
      '--seed',
      '11',
      '--hostile-share',
      '0.03',
      '--redeliver-share',
      '0.02',
      '--faults',
      'kill,pg,sqs',
      '--at',
      '0.1,0.3,0.5',
      '--workers',
      '2',
      '--pg-down',
      '3',
      '--sqs-window',
      '3',
      '--sqs-mode',
      'fail',
      '--visibility',
      '5',
      '--no-baseline',
      '--timeout',
      '200',
      '--json',
    ]);
    let report: ChaosReport;
    try {
      report = JSON.parse(stdout);
    } catch {
      throw new Error(`npm run chaos printed no report (exit code ${code}):\n${stdout.slice(-2000)}\n${stderr.slice(-4000)}`);
    }
    const f = report.faulted;
    expect({ verdict: report.verdict, problems: report.problems, code }).toEqual({ verdict: 'pass', problems: [], code: 0 });
    expect(f.balance).toEqual({
      rows: f.balance.rows,
      quarantine: 4000 - f.balance.rows,
      ledger: 4000,
      storedTwice: 0,
      distinctSent: 4000,
      left: { visible: 0, inFlight: 0 },
      balanced: true,
    });
    // Every hostile body ended in quarantine with its reason.
    expect(f.hostile).toEqual({ total: 120, wrong: [] });
    // Each fault struck a queue that still held messages: it tested something.
    expect(f.strikes.map((s) => ({ fault: s.fault, empty: s.empty }))).toEqual([
      { fault: 'kill', empty: false },
      { fault: 'pg', empty: false },
      { fault: 'sqs', empty: false },
    ]);
    expect(f.workerKills).toBe(1);
    // The SQS fault answered requests with errors, and lost deletes were redelivered and deduplicated.
    expect(f.proxy.failed).toBeGreaterThan(0);
    expect(f.proxy.redelivered).toBeGreaterThan(0);
    expect(f.summary!.alreadySeen).toBeGreaterThan(0);
    expect(f.summary!.stopReason).toBe('queue_empty');
  });

  it('a bad setting stops it before anything starts, naming the setting and a valid example', async () => {
    const { code, stdout, stderr } = await chaos(['--faults', 'kill,meteor']);
    expect({ code, stdout }).toEqual({ code: 3, stdout: '' });
    expect(stderr).toMatch(
      /--faults: "kill,meteor" is not valid \("meteor" is not a fault; the faults are kill, pg, sqs, temporal, or none\); for example --faults kill,pg,sqs,temporal/,
    );
  });
});
