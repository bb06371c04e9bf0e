// What the audit trail stores of untrusted input, and the record-set hash approvals sign.
import crypto from 'node:crypto';
import { auditActor, auditRequestId, safeDetails } from '../../lib/recovery/audit';
import { recordSetHash, type RecordSet } from '../../lib/recovery/records';

describe('audit input', () => {
  it('records a request ID only when it is a lower-case UUID, else unknown', () => {
    const id = crypto.randomUUID();
    expect(auditRequestId(id)).toBe(id);
    for (const bad of [id.toUpperCase(), `${id}x`, '\ud800' + id.slice(1), 'rotation-k-1', '', null, 7, { id }])
      expect(auditRequestId(bad)).toBe('unknown');
    expect(auditActor('alice')).toBe('alice');
    expect(auditActor('alice\udc00')).toBeNull();
  });

  it('makes details storable whatever they hold: lone surrogates, NUL, odd keys, non-JSON values, depth, size', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const details = safeDetails({
      ['k\ud800']: 'v\udc00\u0000',
      ['__proto__']: { polluted: true },
      n: Number.NaN,
      big: 10n,
      when: new Date(0),
      fn: () => 1,
      cyclic,
      long: 'x'.repeat(5000),
      list: Array.from({ length: 2000 }, (_, i) => i),
    });
    const json = JSON.stringify(details);
    expect(json).not.toMatch(/\\ud[89a-f][0-9a-f]{2}/i); // no lone surrogate escapes left
    expect(json).not.toContain('\\u0000');
    expect(details['k\uFFFD']).toBe('v\uFFFD\uFFFD');
    expect(Object.getPrototypeOf(details)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(details.n).toBe('NaN');
    expect(details.big).toBe('[bigint]');
    expect(details.when).toBe('[object]');
    expect((details.long as string).length).toBeLessThanOrEqual(2001);
    expect((details.list as unknown[]).length).toBe(1000);
    expect(JSON.stringify(details.cyclic)).toContain('[too deep]');
    expect(safeDetails('not an object')).toEqual({ value: 'not an object' });
  });
});

describe('recordSetHash', () => {
  const set: RecordSet = {
    requestId: crypto.randomUUID(),
    selector: { userId: 'u-1' },
    fields: ['ip'],
    records: [
      { table: 'user_logins', messageId: 'm-1' },
      { table: 'user_logins', messageId: 'm-2' },
    ],
  };
  it('changes with every part an approver approves', () => {
    const base = recordSetHash(set);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(recordSetHash({ ...set })).toBe(base);
    expect(recordSetHash({ ...set, requestId: crypto.randomUUID() })).not.toBe(base);
    expect(recordSetHash({ ...set, selector: { userId: 'u-2' } })).not.toBe(base);
    expect(recordSetHash({ ...set, fields: ['ip', 'device_id'] })).not.toBe(base);
    expect(recordSetHash({ ...set, records: [...set.records, { table: 'user_logins', messageId: 'm-3' }] })).not.toBe(base);
    expect(recordSetHash({ ...set, records: [set.records[0]] })).not.toBe(base);
    expect(recordSetHash({ ...set, records: [{ table: 'quarantine', messageId: 'm-1' }, set.records[1]] })).not.toBe(base);
  });
});
