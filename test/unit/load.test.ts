import fs from 'node:fs';
import path from 'node:path';
import { flatten } from '../../lib/pipeline/flatten';
import { fileBodies, generateBodies, SAMPLE_FILE, sampleBodies } from '../../lib/ingest/load';
import { transformBatch } from '../../lib/pipeline/transform';
import { validate } from '../../lib/pipeline/validate';
import { makeTempDir, receivedMessage, removeTempDirs, testKeyring } from './helpers';

afterAll(removeTempDirs);

/** The reasons flatten + validate give a body, [] when it is a valid login event. */
function problems(body: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return ['invalid_json'];
  }
  const flat = flatten(parsed);
  if (!flat.ok) return flat.reasons;
  const valid = validate(flat.event);
  return valid.ok ? [] : valid.reasons;
}

describe('generateBodies', () => {
  it('returns n bodies', () => {
    expect(generateBodies(0)).toEqual([]);
    expect(generateBodies(1)).toHaveLength(1);
    expect(generateBodies(257, { malformedShare: 0.3, duplicateShare: 0.3 })).toHaveLength(257);
  });

  it('is deterministic for a seed and differs between seeds', () => {
    const opts = { malformedShare: 0.2, duplicateShare: 0.2 };
    expect(generateBodies(200, { ...opts, seed: 7 })).toEqual(generateBodies(200, { ...opts, seed: 7 }));
    expect(generateBodies(200, { ...opts, seed: 8 })).not.toEqual(generateBodies(200, { ...opts, seed: 7 }));
    expect(generateBodies(50)).toEqual(generateBodies(50, { seed: 1 })); // the default seed
  });

  it('with malformedShare 0 gives only bodies that flatten and validate', () => {
    const bodies = generateBodies(1000, { malformedShare: 0, seed: 3 });
    const failures = bodies.map((b) => ({ b, reasons: problems(b) })).filter((x) => x.reasons.length);
    expect(failures).toEqual([]);
  });

  it('with no duplicateShare repeats no body, and with one repeats some exactly', () => {
    const unique = generateBodies(500, { seed: 5 });
    expect(new Set(unique).size).toBe(500);

    const bodies = generateBodies(500, { duplicateShare: 0.3, seed: 5 });
    const repeats = bodies.length - new Set(bodies).size;
    // About 30% of 500; a loose band keeps the test about the option, not the PRNG.
    expect(repeats).toBeGreaterThan(100);
    expect(repeats).toBeLessThan(200);
    // A repeat is an exact copy of an earlier body, and a valid event.
    for (const [i, body] of bodies.entries()) {
      if (bodies.indexOf(body) !== i) expect(problems(body)).toEqual([]);
    }
  });

  it('with malformedShare 1 gives only bodies that transform to quarantine', () => {
    const bodies = generateBodies(300, { malformedShare: 1, seed: 11 });
    const batch = transformBatch(
      testKeyring(),
      bodies.map((b) => receivedMessage(b)),
    );
    expect(batch.rows).toEqual([]);
    expect(batch.quarantine).toHaveLength(300);
    // Several kinds of malformation show up, not a single one.
    const kinds = new Set(batch.quarantine.map((q) => q.reasons.join(',')));
    expect(kinds).toEqual(
      new Set([
        'invalid_json',
        'unknown_shape',
        'invalid_ip',
        'missing_field:device_id',
        'wrong_type:app_version',
        'not_an_object',
      ]),
    );
  });

  it('mixes malformed and good bodies in about the requested share', () => {
    const bodies = generateBodies(1000, { malformedShare: 0.25, seed: 2 });
    const bad = bodies.filter((b) => problems(b).length > 0).length;
    expect(bad).toBeGreaterThan(180);
    expect(bad).toBeLessThan(320);
  });
});

describe('sampleBodies', () => {
  it('returns the 100 messages of data/sample.json, one JSON body each', () => {
    const bodies = sampleBodies();
    expect(bodies).toHaveLength(100);
    expect(bodies.map((b) => JSON.parse(b))).toEqual(JSON.parse(fs.readFileSync(SAMPLE_FILE, 'utf8')));
    expect(bodies).toContain('{"foo":"oops_wrong_msg_type","bar":"123"}');
  });

  it('reads another file when given one', () => {
    const file = path.join(makeTempDir(), 'events.json');
    fs.writeFileSync(file, JSON.stringify([{ a: 1 }, 'text', null]));
    expect(sampleBodies(file)).toEqual(['{"a":1}', '"text"', 'null']);
  });
});

describe('fileBodies', () => {
  it('gives one body per non-blank line, as written, and skips blank lines', () => {
    const file = path.join(makeTempDir(), 'bodies.ndjson');
    fs.writeFileSync(file, '{"a":1}\n\n   \n{"user_id": "truncated\r\n\t\nnot json at all\n');
    expect(fileBodies(file)).toEqual(['{"a":1}', '{"user_id": "truncated', 'not json at all']);
  });

  it('returns nothing for an empty file', () => {
    const file = path.join(makeTempDir(), 'empty.ndjson');
    fs.writeFileSync(file, '');
    expect(fileBodies(file)).toEqual([]);
  });
});
