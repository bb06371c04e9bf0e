// The chaos command's settings: parsed and checked before anything starts, so a bad one
// stops the program with the setting's name and an example of a valid value.
export const FAULTS = ['kill', 'pg', 'sqs', 'temporal'] as const;
export type Fault = (typeof FAULTS)[number];
export const SQS_MODES = ['fail', 'slow', 'reset'] as const;
export type SqsFaultMode = (typeof SQS_MODES)[number];

export interface ChaosOptions {
  messages: number;
  seed: number;
  malformedShare: number;
  duplicateShare: number;
  hostileShare: number;
  /** Share of DeleteMessageBatch calls lost and redelivered at once (forced redeliveries). */
  redeliverShare: number;
  faults: Fault[];
  /** The share of the queue gone at which each fault strikes, one per fault, rising. */
  at: number[];
  workers: number;
  pgDownSeconds: number;
  sqsWindowSeconds: number;
  sqsMode: SqsFaultMode;
  sqsDelayMs: number;
  temporalDownSeconds: number;
  visibilityTimeoutSeconds: number;
  baseline: boolean;
  json: boolean;
  timeoutSeconds: number;
}

export const DEFAULTS: ChaosOptions = {
  messages: 20_000,
  seed: 1,
  malformedShare: 0.05,
  duplicateShare: 0.05,
  hostileShare: 0.01,
  redeliverShare: 0.01,
  faults: ['kill', 'pg', 'kill', 'sqs', 'temporal', 'kill'],
  at: [0.1, 0.25, 0.4, 0.55, 0.7, 0.85],
  workers: 2,
  pgDownSeconds: 15,
  sqsWindowSeconds: 8,
  sqsMode: 'fail',
  sqsDelayMs: 2000,
  temporalDownSeconds: 3,
  visibilityTimeoutSeconds: 30,
  baseline: true,
  json: false,
  timeoutSeconds: 900,
};

export const USAGE = `npm run chaos -- [options]
  --messages N          messages to send (${DEFAULTS.messages}; 100–1000000)
  --seed N              seed of the generated messages and of the faults' choices (${DEFAULTS.seed})
  --malformed-share X   share of malformed messages (${DEFAULTS.malformedShare})
  --duplicate-share X   share of messages repeating an earlier one's content (${DEFAULTS.duplicateShare})
  --hostile-share X     share of hostile bodies (not JSON, wrong types, oversized, prototype keys, deep nesting …) (${DEFAULTS.hostileShare})
  --redeliver-share X   share of delete calls lost and their messages redelivered at once (${DEFAULTS.redeliverShare})
  --faults LIST         faults in order, from ${FAULTS.join(', ')}, or "none" (${DEFAULTS.faults.join(',')})
  --at LIST             share of the queue gone at which each fault strikes (${DEFAULTS.at.join(',')})
  --workers N           worker processes on the one task queue (${DEFAULTS.workers}; 1–8)
  --pg-down S           seconds PostgreSQL stays stopped (${DEFAULTS.pgDownSeconds})
  --sqs-window S        seconds the SQS endpoint misbehaves (${DEFAULTS.sqsWindowSeconds})
  --sqs-mode M          ${SQS_MODES.join(' | ')} (${DEFAULTS.sqsMode})
  --sqs-delay-ms N      delay per request in slow mode (${DEFAULTS.sqsDelayMs})
  --temporal-down S     seconds between killing the Temporal server and restarting it (${DEFAULTS.temporalDownSeconds})
  --visibility S        the ingest's visibility timeout, seconds (${DEFAULTS.visibilityTimeoutSeconds}; 5–43200)
  --no-baseline         skip the run without faults (no fault costs then)
  --timeout S           give up on a run after this long (${DEFAULTS.timeoutSeconds})
  --json                print the figures as one JSON object
Exit code: 0 pass, 1 fail, 2 inconclusive (a fault struck an empty queue), 3 bad settings.`;

export class ChaosUsageError extends Error {}

const bad = (name: string, got: string, example: string, why = '') =>
  new ChaosUsageError(
    `--${name}: ${JSON.stringify(got)} is not valid${why ? ` (${why})` : ''}; for example --${name} ${example}`,
  );

function int(name: string, v: string, min: number, max: number, example: string): number {
  const n = Number(v);
  if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max)
    throw bad(name, v, example, `a whole number from ${min} to ${max}`);
  return n;
}
function num(name: string, v: string, min: number, max: number, example: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw bad(name, v, example, `a number from ${min} to ${max}`);
  return n;
}

const FLAGS = new Set(['json', 'no-baseline', 'help']);
const VALUED = new Set([
  'messages',
  'seed',
  'malformed-share',
  'duplicate-share',
  'hostile-share',
  'redeliver-share',
  'faults',
  'at',
  'workers',
  'pg-down',
  'sqs-window',
  'sqs-mode',
  'sqs-delay-ms',
  'temporal-down',
  'visibility',
  'timeout',
]);

/** Parses argv (without node and the script); throws ChaosUsageError naming the setting. 'help' when --help is given. */
export function parseChaosArgs(argv: string[]): ChaosOptions | 'help' {
  const o: ChaosOptions = { ...DEFAULTS, faults: [...DEFAULTS.faults], at: [...DEFAULTS.at] };
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m)
      throw new ChaosUsageError(`Unexpected argument ${JSON.stringify(a)}; settings look like --messages 20000 (see --help)`);
    const name = m[1];
    if (FLAGS.has(name)) {
      if (m[2] !== undefined) throw new ChaosUsageError(`--${name} takes no value; for example --${name}`);
      if (name === 'help') return 'help';
      if (name === 'json') o.json = true;
      if (name === 'no-baseline') o.baseline = false;
      continue;
    }
    if (!VALUED.has(name)) throw new ChaosUsageError(`Unknown setting --${name}; for example --messages 20000 (see --help)`);
    const v = m[2] ?? argv[++i];
    if (v === undefined || (m[2] === undefined && v.startsWith('--')))
      throw new ChaosUsageError(`--${name} needs a value; for example --${name} ${example(name)}`);
    if (given.has(name))
      throw new ChaosUsageError(`--${name} is given twice; give it once, for example --${name} ${example(name)}`);
    given.add(name);
    set(o, name, v);
  }
  if (o.malformedShare + o.duplicateShare + o.hostileShare > 0.9) {
    throw new ChaosUsageError(
      `--malformed-share, --duplicate-share and --hostile-share add up to ${o.malformedShare + o.duplicateShare + o.hostileShare}; they must leave at least 0.1 for good messages, for example --malformed-share 0.05 --duplicate-share 0.05 --hostile-share 0.01`,
    );
  }
  if (!given.has('at') && given.has('faults')) o.at = spread(o.faults.length);
  if (o.at.length !== o.faults.length) {
    throw new ChaosUsageError(
      `--at gives ${o.at.length} share(s) for ${o.faults.length} fault(s) in --faults; give one per fault, for example --faults ${o.faults.join(',') || 'kill'} --at ${spread(o.faults.length || 1).join(',')}`,
    );
  }
  return o;
}

/** n shares evenly between 0.1 and 0.85. */
export function spread(n: number): number[] {
  if (n === 0) return [];
  if (n === 1) return [0.3];
  return Array.from({ length: n }, (_, i) => Math.round((0.1 + (0.75 * i) / (n - 1)) * 100) / 100);
}

function example(name: string): string {
  return (
    {
      messages: '20000',
      seed: '7',
      'malformed-share': '0.05',
      'duplicate-share': '0.05',
      'hostile-share': '0.01',
      'redeliver-share': '0.01',
      faults: 'kill,pg,sqs,temporal',
      at: '0.1,0.3,0.5,0.7',
      workers: '2',
      'pg-down': '15',
      'sqs-window': '8',
      'sqs-mode': 'fail',
      'sqs-delay-ms': '2000',
      'temporal-down': '3',
      visibility: '30',
      timeout: '900',
    } as Record<string, string>
  )[name];
}

function set(o: ChaosOptions, name: string, v: string): void {
  const ex = example(name);
  switch (name) {
    case 'messages':
      o.messages = int(name, v, 100, 1_000_000, ex);
      break;
    case 'seed':
      o.seed = int(name, v, 0, 2 ** 32 - 1, ex);
      break;
    case 'malformed-share':
      o.malformedShare = num(name, v, 0, 0.9, ex);
      break;
    case 'duplicate-share':
      o.duplicateShare = num(name, v, 0, 0.9, ex);
      break;
    case 'hostile-share':
      o.hostileShare = num(name, v, 0, 0.9, ex);
      break;
    case 'redeliver-share':
      o.redeliverShare = num(name, v, 0, 0.5, ex);
      break;
    case 'workers':
      o.workers = int(name, v, 1, 8, ex);
      break;
    case 'pg-down':
      o.pgDownSeconds = num(name, v, 0, 600, ex);
      break;
    case 'sqs-window':
      o.sqsWindowSeconds = num(name, v, 0, 600, ex);
      break;
    case 'sqs-delay-ms':
      o.sqsDelayMs = int(name, v, 0, 60_000, ex);
      break;
    case 'temporal-down':
      o.temporalDownSeconds = num(name, v, 0, 600, ex);
      break;
    case 'visibility':
      o.visibilityTimeoutSeconds = int(name, v, 5, 43_200, ex);
      break;
    case 'timeout':
      o.timeoutSeconds = int(name, v, 10, 86_400, ex);
      break;
    case 'sqs-mode':
      if (!(SQS_MODES as readonly string[]).includes(v)) throw bad(name, v, ex, `one of ${SQS_MODES.join(', ')}`);
      o.sqsMode = v as SqsFaultMode;
      break;
    case 'faults': {
      if (v.trim() === 'none') {
        o.faults = [];
        break;
      }
      const list = v.split(',').map((s) => s.trim());
      const wrong = list.find((f) => !(FAULTS as readonly string[]).includes(f));
      if (wrong !== undefined)
        throw bad(name, v, ex, `${JSON.stringify(wrong)} is not a fault; the faults are ${FAULTS.join(', ')}, or none`);
      o.faults = list as Fault[];
      break;
    }
    case 'at': {
      const list = v.split(',').map((s) => s.trim());
      const shares = list.map((s) => Number(s));
      if (list.some((s) => s === '') || shares.some((x) => !Number.isFinite(x) || x <= 0 || x >= 1))
        throw bad(name, v, ex, 'shares between 0 and 1, exclusive');
      if (shares.some((x, i) => i > 0 && x < shares[i - 1])) throw bad(name, v, ex, 'the shares must not fall');
      o.at = shares;
      break;
    }
  }
}
