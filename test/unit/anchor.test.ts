// The audit anchors' pure comparison (every kind of disagreement, by entry and anchor), the
// anchor's format, the local append-only store, and the anchor activity's alert when a
// write fails (metric and ERROR log line).
import fs from 'node:fs';
import path from 'node:path';
import { createAnchorActivities } from '../../activities/anchor';
import { reportVerification } from '../../cli/audit';
import { registry } from '../../lib/ingest/metrics';
import type { Db } from '../../lib/platform/db';
import { GENESIS_HASH } from '../../lib/recovery/audit';
import { compareWithAnchors, newAnchor, parseAnchor, type ChainPoint, type ReadAnchor } from '../../lib/recovery/anchor-check';
import { FileAnchorStore, verifyAnchors, type AnchorStore } from '../../lib/recovery/anchor';
import { makeTempDir, removeTempDirs } from './helpers';

afterAll(removeTempDirs);

const h = (c: string) => c.repeat(64);
const anchor = (entries: number, lastId: string, lastHash: string, where = `a${lastId}`): ReadAnchor => ({
  where,
  anchor: { version: 1, entries, lastId, lastHash, at: '2026-12-06T00:00:00.000Z' },
});
const points = (...p: [string, string, number][]) =>
  new Map<string, ChainPoint>(p.map(([id, hash, position]) => [id, { hash, position }]));

describe('compareWithAnchors', () => {
  const head = { entries: 7, lastId: '7', lastHash: h('7') };

  it('finds nothing when every anchored entry is there with its hash and position', () => {
    expect(
      compareWithAnchors(head, points(['5', h('5'), 5], ['7', h('7'), 7]), [anchor(5, '5', h('5')), anchor(7, '7', h('7'))]),
    ).toEqual([]);
  });

  it('names entries deleted from the end: the anchored entry is gone and the chain ends before it', () => {
    const f = compareWithAnchors({ entries: 5, lastId: '5', lastHash: h('5') }, points(['5', h('5'), 5]), [
      anchor(5, '5', h('5')),
      anchor(7, '7', h('7'), 's3://b/x'),
    ]);
    expect(f).toEqual([
      {
        anchor: 's3://b/x',
        entry: '7',
        problem: expect.stringMatching(/^entry 7 .*s3:\/\/b\/x.*chain ends at entry 5.*deleted from the end/),
      },
    ]);
  });

  it('names a chain emptied altogether', () => {
    const f = compareWithAnchors({ entries: 0, lastId: null, lastHash: GENESIS_HASH }, new Map(), [anchor(1, '1', h('1'))]);
    expect(f[0].problem).toMatch(/the chain is empty: entries were deleted from the end/);
  });

  it('names a rewritten chain: the anchored entry holds another hash', () => {
    const f = compareWithAnchors(head, points(['5', h('e'), 5]), [anchor(5, '5', h('5'))]);
    expect(f).toEqual([
      { anchor: 'a5', entry: '5', problem: expect.stringMatching(/^entry 5 has hash e+ but a5 anchored 5+ .*rewritten/) },
    ]);
  });

  it('names entries deleted before the anchored one (its position moved) and one gone from the middle', () => {
    expect(compareWithAnchors(head, points(['5', h('5'), 4]), [anchor(5, '5', h('5'))])[0].problem).toMatch(
      /counted 5 entries up to entry 5 .* now has 4: entries were deleted before it/,
    );
    expect(compareWithAnchors(head, new Map(), [anchor(5, '5', h('5'))])[0].problem).toMatch(/gone from the middle/);
  });

  it('reports an anchor that cannot be read, and accepts the empty chain anchored', () => {
    expect(compareWithAnchors(head, new Map(), [{ where: 'f:3', anchor: null, problem: 'not valid JSON' }])).toEqual([
      { anchor: 'f:3', entry: null, problem: 'anchor f:3 cannot be read: not valid JSON' },
    ]);
    const empty = newAnchor({ entries: 0, lastId: null, lastHash: GENESIS_HASH });
    expect(compareWithAnchors(head, new Map(), [{ where: 'e', anchor: empty }])).toEqual([]);
  });
});

describe('parseAnchor', () => {
  it('round-trips an anchor and refuses anything else', () => {
    const a = newAnchor({ entries: 3, lastId: '9', lastHash: h('a') }, new Date('2026-12-06T01:02:03Z'));
    expect(parseAnchor(JSON.stringify(a))).toEqual(a);
    expect(parseAnchor('{')).toBe('not valid JSON');
    for (const bad of [
      { ...a, version: 2 },
      { ...a, lastHash: 'x' },
      { ...a, entries: -1 },
      { ...a, lastId: '1; drop' },
      { ...a, at: 'soon' },
    ])
      expect(parseAnchor(JSON.stringify(bad))).toMatch(/^not an anchor/);
  });
});

describe('FileAnchorStore', () => {
  it('appends one line per anchor and reads them back with their line, a damaged line reported', async () => {
    const file = path.join(makeTempDir(), 'sub', 'anchors.jsonl');
    const store = new FileAnchorStore(file);
    await store.open();
    expect(await store.list()).toEqual([]);
    const a = newAnchor({ entries: 1, lastId: '1', lastHash: h('1') });
    const b = newAnchor({ entries: 2, lastId: '2', lastHash: h('2') });
    await store.write(a);
    fs.appendFileSync(file, 'garbage\n');
    await store.write(b);
    expect(await store.list()).toEqual([
      { where: `${file}:1`, anchor: a },
      { where: `${file}:2`, anchor: null, problem: 'not valid JSON' },
      { where: `${file}:3`, anchor: b },
    ]);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });
});

describe('verifyAnchors', () => {
  it('reports a store it cannot read as a finding, not as a pass', async () => {
    const db = { $queryRaw: async () => [] } as unknown as Db;
    const dir = makeTempDir(); // a folder where the file should be: reading fails
    const result = await verifyAnchors(db, new FileAnchorStore(dir));
    expect(result).toEqual({
      anchors: 0,
      findings: [{ anchor: dir, entry: null, problem: expect.stringMatching(/cannot be read: .*EISDIR/) }],
    });
  });
});

describe('reportVerification', () => {
  it('prints every finding and sets exit code 1, even when the chain itself is intact', () => {
    const out: string[] = [];
    const log = jest.spyOn(console, 'log').mockImplementation((line) => void out.push(`out ${line}`));
    const err = jest.spyOn(console, 'error').mockImplementation((line) => void out.push(`err ${line}`));
    const before = process.exitCode;
    try {
      const finding = { anchor: 's3://b/a1', entry: '7', problem: 'entry 7 (anchored by s3://b/a1 …) is gone' };
      reportVerification({ ok: true, entries: 5, head: h('5') }, { store: 's3://b', anchors: 2, findings: [finding] }, false);
      expect(process.exitCode).toBe(1);
      expect(out).toEqual([
        `out Audit trail intact: 5 entries, head ${h('5')}.`,
        'err Audit trail does NOT match its anchors: 1 problem(s) against 2 anchor(s) in s3://b:',
        'err   entry 7 (anchored by s3://b/a1 …) is gone',
      ]);
      process.exitCode = undefined;
      out.length = 0;
      reportVerification({ ok: true, entries: 5, head: h('5') }, { store: 's3://b', anchors: 2, findings: [] }, true);
      expect(process.exitCode).toBeUndefined();
      expect(JSON.parse(out[0].slice(4))).toMatchObject({ ok: true, chainOk: true, anchors: { anchors: 2, findings: [] } });
    } finally {
      process.exitCode = before;
      log.mockRestore();
      err.mockRestore();
    }
  });
});

describe('the anchor activity', () => {
  it('counts a failed write, logs an ALERT and fails; a written one sets the last-success time', async () => {
    const failures = async () =>
      (await registry.getMetricsAsJSON()).find((m) => m.name === 'login_ingest_audit_anchor_failures_total')!.values[0]?.value ??
      0;
    const db = { $queryRaw: async () => [{ id: 4n, hash: h('4'), n: 4n }] } as unknown as Db;
    const broken: AnchorStore = {
      description: 's3://nowhere',
      open: async () => {},
      write: async () => {
        throw new Error('AccessDenied');
      },
      list: async () => [],
      close: () => {},
    };
    const before = await failures();
    const lines: string[] = [];
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => (lines.push(String(chunk)), true));
    try {
      await expect(createAnchorActivities({ db, store: broken }).anchorAuditTrail()).rejects.toThrow('AccessDenied');
    } finally {
      spy.mockRestore();
    }
    expect(await failures()).toBe(before + 1);
    expect(lines.join('')).toMatch(/ALERT: the audit trail's head could not be anchored to s3:\/\/nowhere: AccessDenied/);

    const file = path.join(makeTempDir(), 'a.jsonl');
    const result = await createAnchorActivities({ db, store: new FileAnchorStore(file) }).anchorAuditTrail();
    expect(result).toEqual({ entries: 4, lastId: '4', where: file });
    const last = (await registry.getMetricsAsJSON()).find(
      (m) => m.name === 'login_ingest_audit_anchor_last_success_timestamp_seconds',
    );
    expect(last!.values[0].value).toBeGreaterThan(Date.now() / 1000 - 60);
  });
});
