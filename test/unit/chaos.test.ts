// The chaos suite's pure parts: its settings (every one rejected with its name and an
// example), the message mix, the hostile shapes against the pipeline's own pure transform,
// and the verdict.
import { DEFAULTS, parseChaosArgs, spread, type ChaosOptions } from '../../scripts/chaos/options';
import { HOSTILE_KINDS, hostileBodies } from '../../scripts/chaos/hostile';
import { chaosMessages } from '../../scripts/chaos/messages';
import type { RunResult } from '../../scripts/chaos/verdict';
import { judge } from '../../scripts/chaos/verdict';
import { parseBody } from '../../lib/pipeline/transform';
import { flatten } from '../../lib/pipeline/flatten';
import { validate } from '../../lib/pipeline/validate';
import { cutUtf8, MAX_BODY_BYTES } from '../../lib/ingest/sqs';

const opts = (argv: string[]) => parseChaosArgs(argv) as ChaosOptions;

describe('chaos settings', () => {
  it('has the documented defaults', () => {
    const o = opts([]);
    expect(o).toEqual(DEFAULTS);
    expect(o.messages).toBe(20_000);
    expect(o.at).toHaveLength(o.faults.length);
  });

  it('reads every setting, in both spellings', () => {
    const o = opts([
      '--messages',
      '3000',
      '--seed=9',
      '--faults',
      'kill,pg',
      '--at',
      '0.2,0.5',
      '--workers',
      '3',
      '--pg-down',
      '5',
      '--sqs-window',
      '2',
      '--sqs-mode',
      'slow',
      '--sqs-delay-ms',
      '500',
      '--temporal-down',
      '1',
      '--visibility',
      '5',
      '--timeout',
      '60',
      '--malformed-share',
      '0.1',
      '--duplicate-share',
      '0',
      '--hostile-share',
      '0.2',
      '--redeliver-share',
      '0.05',
      '--no-baseline',
      '--json',
    ]);
    expect(o).toMatchObject({
      messages: 3000,
      seed: 9,
      faults: ['kill', 'pg'],
      at: [0.2, 0.5],
      workers: 3,
      pgDownSeconds: 5,
      sqsWindowSeconds: 2,
      sqsMode: 'slow',
      sqsDelayMs: 500,
      temporalDownSeconds: 1,
      visibilityTimeoutSeconds: 5,
      timeoutSeconds: 60,
      malformedShare: 0.1,
      duplicateShare: 0,
      hostileShare: 0.2,
      redeliverShare: 0.05,
      baseline: false,
      json: true,
    });
    expect(opts(['--faults', 'none']).faults).toEqual([]);
    expect(opts(['--faults', 'kill,kill,kill']).at).toEqual(spread(3));
    expect(parseChaosArgs(['--help'])).toBe('help');
  });

  // Each bad value: the message names the setting and shows a valid example of it.
  const cases: [string[], RegExp][] = [
    [['--messages', '10'], /--messages: "10" is not valid \(a whole number from 100 to 1000000\); for example --messages 20000/],
    [['--messages', '2e4'], /--messages: "2e4".*for example --messages 20000/],
    [['--seed', '-1'], /--seed.*for example --seed 7/],
    [['--malformed-share', '1.5'], /--malformed-share.*for example --malformed-share 0.05/],
    [['--duplicate-share', 'lots'], /--duplicate-share.*for example --duplicate-share 0.05/],
    [['--hostile-share', ''], /--hostile-share.*for example --hostile-share 0.01/],
    [['--redeliver-share', '0.9'], /--redeliver-share.*from 0 to 0.5.*for example --redeliver-share 0.01/],
    [
      ['--faults', 'kill,flood'],
      /--faults.*"flood" is not a fault; the faults are kill, pg, sqs, temporal, or none.*for example --faults kill,pg,sqs,temporal/,
    ],
    [['--at', '0.5,0.2'], /--at.*must not fall.*for example --at 0.1,0.3,0.5,0.7/],
    [['--at', '0,1'], /--at.*between 0 and 1.*for example --at/],
    [
      ['--faults', 'kill,pg', '--at', '0.5'],
      /--at gives 1 share\(s\) for 2 fault\(s\).*for example --faults kill,pg --at 0.1,0.85/,
    ],
    [['--workers', '0'], /--workers.*from 1 to 8.*for example --workers 2/],
    [['--pg-down', '-3'], /--pg-down.*for example --pg-down 15/],
    [['--sqs-window', 'x'], /--sqs-window.*for example --sqs-window 8/],
    [['--sqs-mode', 'drop'], /--sqs-mode.*one of fail, slow, reset.*for example --sqs-mode fail/],
    [['--sqs-delay-ms', '1.5'], /--sqs-delay-ms.*for example --sqs-delay-ms 2000/],
    [['--temporal-down', '1e9'], /--temporal-down.*for example --temporal-down 3/],
    [['--visibility', '4'], /--visibility.*from 5 to 43200.*for example --visibility 30/],
    [['--timeout', '5'], /--timeout.*for example --timeout 900/],
    [['--messages'], /--messages needs a value; for example --messages 20000/],
    [['--messages', '--json'], /--messages needs a value/],
    [['--seed', '1', '--seed', '2'], /--seed is given twice/],
    [['--json=yes'], /--json takes no value/],
    [['--mesages', '5'], /Unknown setting --mesages; for example --messages 20000/],
    [['20000'], /Unexpected argument "20000"/],
    [['--malformed-share', '0.5', '--duplicate-share', '0.5'], /add up to 1.*at least 0.1 for good messages/],
  ];
  it.each(cases)('rejects %j', (argv, message) => {
    expect(() => parseChaosArgs(argv)).toThrow(message);
  });
});

describe('chaos messages', () => {
  it('mixes hostile bodies into the generated ones, reproducibly', () => {
    const o = { messages: 2000, seed: 3, malformedShare: 0.05, duplicateShare: 0.05, hostileShare: 0.1 };
    const a = chaosMessages(o);
    expect(a.bodies).toHaveLength(2000);
    expect(a.hostile).toHaveLength(200);
    expect(new Set(a.hostile.map((h) => h.index)).size).toBe(200);
    expect(chaosMessages(o)).toEqual(a);
    expect(chaosMessages({ ...o, seed: 4 }).bodies).not.toEqual(a.bodies);
    expect(new Set(a.hostile.map((h) => h.kind))).toEqual(new Set(HOSTILE_KINDS.map((k) => k.kind)));
  });

  it('every hostile shape is quarantined by the pipeline with its reason (the pure transform, as a drain thread runs it)', () => {
    let x = 7;
    const rnd = () => (x = (x * 16807) % 2147483647) / 2147483647;
    for (const h of hostileBodies(HOSTILE_KINDS.length * 3, rnd)) {
      const { text, bytes, cut } = cutUtf8(h.body, MAX_BODY_BYTES);
      const parsed = parseBody({
        messageId: 'm',
        receiptHandle: 'r',
        body: text,
        bodyBytes: bytes,
        bodyTruncated: cut,
        sentTimestamp: 1,
        receiveCount: 1,
      });
      const flat = parsed.ok ? flatten(parsed.value) : parsed;
      const valid = flat.ok ? validate(flat.event) : flat;
      expect({ kind: h.kind, reasons: valid.ok ? 'accepted' : valid.reasons }).toEqual({
        kind: h.kind,
        reasons: expect.arrayContaining([h.reason]),
      });
    }
  });

  it('the oversized multi-byte body is under 8 KiB in characters and over it in bytes', () => {
    const body = HOSTILE_KINDS.find((k) => k.kind === 'oversized_multibyte')!.make(() => 0.5);
    expect(body.length).toBeLessThan(8192);
    expect(Buffer.byteLength(body)).toBeGreaterThan(8192);
  });
});

describe('chaos verdict', () => {
  const run = (over: Partial<RunResult> = {}): RunResult => ({
    drainSeconds: 20,
    summary: { persisted: 90, quarantined: 10, stopReason: 'queue_empty' } as RunResult['summary'],
    error: null,
    balance: {
      rows: 90,
      quarantine: 10,
      ledger: 100,
      storedTwice: 0,
      distinctSent: 100,
      left: { visible: 0, inFlight: 0 },
      balanced: true,
    },
    strikes: [
      {
        fault: 'kill',
        at: 0.1,
        share: 0.1,
        depth: { visible: 80, inFlight: 10 },
        struckAt: 2,
        recoveredAt: 2,
        detail: '',
        empty: false,
      },
    ],
    progress: [
      [0, 0],
      [2, 0.1],
      [10, 1],
    ],
    hostile: { total: 5, wrong: [] },
    proxy: { requests: 1, failed: 0, slowed: 0, reset: 0, lostDeletes: 0, redelivered: 0, redeliverErrors: 0 },
    workerStarts: 2,
    workerKills: 1,
    startFailures: [],
    neverStarted: [],
    ...over,
  });
  const o = { ...DEFAULTS, faults: ['kill' as const], at: [0.1] };

  it('passes a balanced run and costs each fault against the baseline', () => {
    const r = judge(o, run(), run({ drainSeconds: 10, strikes: [] }));
    expect(r.verdict).toBe('pass');
    expect(r.costSeconds).toBe(10);
    expect(r.faultCosts).toEqual([{ fault: 'kill', share: 0.1, costSeconds: 10 }]);
  });

  it('fails on a lost, a doubled or a left-over message, and on a hostile one not quarantined', () => {
    expect(judge(o, run({ balance: { ...run().balance, rows: 89, ledger: 99 } }), null).problems.join()).toMatch(
      /89.*= 99, but 100 distinct/,
    );
    expect(judge(o, run({ balance: { ...run().balance, storedTwice: 1 } }), null).verdict).toBe('fail');
    expect(judge(o, run({ balance: { ...run().balance, left: { visible: 0, inFlight: 3 } } }), null).problems.join()).toMatch(
      /3 in flight/,
    );
    expect(
      judge(o, run({ hostile: { total: 5, wrong: [{ kind: 'proto_key', reason: 'unknown_field', got: null }] } }), null).verdict,
    ).toBe('fail');
    expect(
      judge(o, run({ summary: { persisted: 91, quarantined: 10, stopReason: 'queue_empty' } as RunResult['summary'] }), null)
        .verdict,
    ).toBe('fail');
  });

  it('fails on a summary short of the database too (the summary is exact: a retry counts a dead attempt from the ledger)', () => {
    const r = judge(
      o,
      run({ summary: { persisted: 85, quarantined: 10, stopReason: 'queue_empty' } as RunResult['summary'] }),
      null,
    );
    expect(r.verdict).toBe('fail');
    expect(r.summaryVsDatabase).toEqual({ persisted: 5, quarantined: 0 });
    expect(r.problems.join()).toMatch(/summary differs from the database \(rows 90 vs 85/);
  });

  it('is inconclusive when a fault struck an empty queue', () => {
    const r = judge(o, run({ strikes: [{ ...run().strikes[0], depth: { visible: 0, inFlight: 0 }, empty: true }] }), null);
    expect(r.verdict).toBe('inconclusive');
  });
});
