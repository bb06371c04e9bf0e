import { emptySummary } from '../../workflows/ingest';
import { ingestSearchAttributes, runAttributes, SEARCH_ATTRIBUTE_ARGS } from '../../lib/contract/run-attributes';
import { runsQuery } from '../../cli/runs';

describe('run attributes', () => {
  it('map a summary to typed search attributes (counts and the stop reason only)', () => {
    const s = { ...emptySummary('2026-01-01T00:00:00Z', 100), received: 100, persisted: 99, quarantined: 1, alreadySeen: 2 };
    expect(ingestSearchAttributes(s).map((p) => [p.key.name, p.key.type, p.value])).toEqual([
      ['IngestReceived', 'INT', 100],
      ['IngestPersisted', 'INT', 99],
      ['IngestQuarantined', 'INT', 1],
      ['IngestStopReason', 'KEYWORD', 'running'],
    ]);
    expect(ingestSearchAttributes({ ...s, stopReason: 'queue_empty' }).at(-1)!.value).toBe('queue_empty');
  });

  it('are registered with the types the Temporal CLI spells', () => {
    expect(SEARCH_ATTRIBUTE_ARGS).toEqual([
      'IngestReceived=Int',
      'IngestPersisted=Int',
      'IngestQuarantined=Int',
      'IngestStopReason=Keyword',
    ]);
  });

  it('upsert after batches at most once per interval, skip unchanged values, and always at the end', () => {
    const calls: unknown[][] = [];
    let now = 0;
    const spy = jest.spyOn(Date, 'now').mockImplementation(() => now);
    try {
      const a = runAttributes((pairs) => calls.push(pairs.map((p) => p.value)), 5000);
      const s = emptySummary('2026-01-01T00:00:00Z', 10);
      a.update({ ...s, received: 1 }); // first: written
      now = 1000;
      a.update({ ...s, received: 2 }); // within 5 s: not written
      now = 6000;
      a.update({ ...s, received: 2 }); // written (changed since the last write)
      now = 12_000;
      a.update({ ...s, received: 2 }); // unchanged: no event
      a.final({ ...s, received: 3, stopReason: 'queue_empty' });
      expect(calls).toEqual([
        [1, 0, 0, 'running'],
        [2, 0, 0, 'running'],
        [3, 0, 0, 'queue_empty'],
      ]);
    } finally {
      spy.mockRestore();
    }
  });

  it('runs are listed by type and workflow ID, quotes escaped', () => {
    expect(runsQuery()).toBe("WorkflowType = 'ingestWorkflow'");
    expect(runsQuery("a'b")).toBe("WorkflowType = 'ingestWorkflow' AND WorkflowId = 'a\\'b'");
  });
});
