// Message bodies to send to the queue: the reference sample, a file, or synthetic events.
import fs from 'node:fs';
import path from 'node:path';

export const SAMPLE_FILE = path.join(__dirname, '..', '..', 'data', 'sample.json');

/** The 100 messages of the reference setup: one JSON array element per message. */
export function sampleBodies(file = SAMPLE_FILE): string[] {
  const events = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown[];
  return events.map((e) => JSON.stringify(e));
}

/** One message body per non-empty line, sent as it is (malformed lines included). */
export function fileBodies(file: string): string[] {
  return fs
    .readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .filter((line) => line.trim() !== '');
}

/** A small seeded PRNG (mulberry32), so a generated load can be reproduced. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface GenerateOptions {
  /** Share of messages that are malformed in one of several ways (0..1). */
  malformedShare?: number;
  /** Share of messages that repeat an earlier event's content exactly (0..1). */
  duplicateShare?: number;
  seed?: number;
}

const LOCALES = ['RU', 'PH', 'US', 'DE', 'BR', 'IN', 'FR', 'JP', null, null, null];
const VERSIONS = ['2.3.0', '0.2.6', '2.2.1', '0.96', '2.00', '1.0', '3.10.4'];

export function generateBodies(n: number, opts: GenerateOptions = {}): string[] {
  const rnd = random(opts.seed ?? 1);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)];
  const digits = (k: number) => Array.from({ length: k }, () => Math.floor(rnd() * 10)).join('');
  const hex = (k: number) => Array.from({ length: k }, () => Math.floor(rnd() * 16).toString(16)).join('');
  const event = () => ({
    user_id: `${hex(8)}-${hex(4)}-4${hex(3)}-${pick(['8', '9', 'a', 'b'])}${hex(3)}-${hex(12)}`,
    app_version: pick(VERSIONS),
    device_type: pick(['ios', 'android']),
    ip: rnd() < 0.1 ? `2001:db8:${hex(4)}::${hex(4)}` : Array.from({ length: 4 }, () => Math.floor(rnd() * 256)).join('.'),
    locale: pick(LOCALES),
    device_id: `${digits(3)}-${digits(2)}-${digits(4)}`,
  });
  const malformed: (() => string)[] = [
    () => '{"user_id": "truncated',
    () => JSON.stringify({ foo: 'oops_wrong_msg_type', bar: digits(3) }),
    () => JSON.stringify({ ...event(), ip: `${digits(3)}.${digits(3)}.${digits(3)}.${digits(3)}9` }),
    () => JSON.stringify({ ...event(), device_id: undefined }),
    () => JSON.stringify({ ...event(), app_version: 230 }),
    () => JSON.stringify([event()]),
  ];

  const bodies: string[] = [];
  const good: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = rnd();
    if (r < (opts.malformedShare ?? 0)) bodies.push(pick(malformed)());
    else if (good.length && r < (opts.malformedShare ?? 0) + (opts.duplicateShare ?? 0)) bodies.push(pick(good));
    else {
      const body = JSON.stringify(event());
      good.push(body);
      bodies.push(body);
    }
  }
  return bodies;
}
