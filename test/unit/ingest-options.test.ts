// The ingest's option ranges (one home for config, CLI, workflow and activity) and how a
// drain's parts add up.
import { combineResults } from '../../lib/ingest/drain-pool';
import {
  checkDrainInput,
  checkIngestOptions,
  drainInput,
  INGEST_LIMITS,
  shares,
  withDefaults,
} from '../../lib/contract/ingest-options';
import { emptyDrainResult, type DrainResult } from '../../lib/contract/types';

describe('ingest options', () => {
  it('fills in every default and keeps what was given', () => {
    const o = withDefaults({ batchSize: 7 });
    expect(o.batchSize).toBe(7);
    for (const [name, limit] of Object.entries(INGEST_LIMITS)) {
      if (name !== 'batchSize' && limit.default !== undefined) expect(o[name as keyof typeof o]).toBe(limit.default);
    }
    expect(o.maxMessages).toBeUndefined();
  });

  it('names the first option out of range, with its range', () => {
    expect(checkIngestOptions({ batchSize: 5000, concurrency: 64 })).toBeNull();
    expect(checkIngestOptions({ batchSize: 5001 })).toBe('Ingest option batchSize=5001 must be a whole number from 1 to 5000');
    expect(checkIngestOptions({ visibilityTimeoutSeconds: 2 })).toMatch(
      /visibilityTimeoutSeconds=2 must be a whole number from 5 to 43200/,
    );
    expect(checkIngestOptions({ concurrency: 1.5 })).toMatch(/concurrency=1.5/);
    expect(checkIngestOptions({ waitTimeSeconds: '3' as unknown as number })).toMatch(/waitTimeSeconds="3"/);
  });

  it('checks a drain input as strictly as the options it came from (an activity input is untrusted)', () => {
    const good = drainInput(withDefaults({}), 100);
    expect(checkDrainInput(good)).toBeNull();
    expect(checkDrainInput({ ...good, pollers: 500 })).toMatch(/receiveConcurrency=500/);
    expect(checkDrainInput({ ...good, maxMessages: 0 })).toMatch(/maxMessages=0/);
    const { chunkSize: _, ...missing } = good;
    expect(checkDrainInput(missing as typeof good)).toBe('drainQueue option batchSize is missing');
    expect(checkDrainInput(null as unknown as typeof good)).toBe('drainQueue needs an object of options');
  });
});

describe('splitting a drain over threads', () => {
  it('splits a budget into whole shares that add up to it', () => {
    expect(shares(10, 3)).toEqual([4, 3, 3]);
    expect(shares(1, 2)).toEqual([1, 0]);
    expect(shares(Number.MAX_SAFE_INTEGER, 2).reduce((a, b) => a + b)).toBe(Number.MAX_SAFE_INTEGER);
  });

  const part = (over: Partial<DrainResult>): DrainResult => ({ ...emptyDrainResult(), ...over });

  it('adds the parts and calls the queue empty only when every part found it so', () => {
    const a = part({
      received: 3,
      persisted: 2,
      quarantined: 1,
      quarantinedByReason: { invalid_json: 1 },
      endedBy: 'empty',
      stageMs: { receive: 1, transform: 2, persist: 3, acknowledge: 4 },
    });
    const b = part({
      received: 5,
      persisted: 5,
      quarantinedByReason: {},
      endedBy: 'time',
      stageMs: { receive: 1, transform: 1, persist: 1, acknowledge: 1 },
    });
    const both = combineResults([a, b], 100);
    expect(both).toMatchObject({
      received: 8,
      persisted: 7,
      quarantined: 1,
      quarantinedByReason: { invalid_json: 1 },
      endedBy: 'time',
    });
    expect(both.stageMs).toEqual({ receive: 2, transform: 3, persist: 4, acknowledge: 5 });
    expect(combineResults([a, { ...b, endedBy: 'empty' }], 100).endedBy).toBe('empty');
    expect(combineResults([a, b], 8).endedBy).toBe('budget');
    expect(combineResults([a, { ...b, endedBy: 'stopped' }], 8).endedBy).toBe('stopped');
  });
});
