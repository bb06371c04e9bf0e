// lib/ingest/held.ts: which held messages a drain must extend, and with which receipt handle.
import { HeldMessages } from '../../lib/ingest/held';

const VISIBILITY_MS = 30_000;

test('a message is due for extension only within half a visibility timeout of its end, then again a timeout later', () => {
  const held = new HeldMessages(VISIBILITY_MS);
  held.hold('a', 'r1', 0);
  expect(held.takeExpiring(14_000)).toEqual([]); // ends at 30 s: not yet within 15 s of it
  expect(held.takeExpiring(15_001)).toEqual([{ messageId: 'a', receiptHandle: 'r1' }]);
  expect(held.takeExpiring(16_000)).toEqual([]); // extended to 45.001 s
  expect(held.takeExpiring(30_002)).toEqual([{ messageId: 'a', receiptHandle: 'r1' }]);
});

test('a message held after a scan that found nothing held is still found when it is due', () => {
  const held = new HeldMessages(VISIBILITY_MS);
  expect(held.takeExpiring(0)).toEqual([]);
  held.hold('late', 'r', 1_000);
  expect(held.takeExpiring(16_001)).toEqual([{ messageId: 'late', receiptHandle: 'r' }]);
});

test('only the messages that are due are extended; the others keep their own deadline', () => {
  const held = new HeldMessages(VISIBILITY_MS);
  held.hold('old', 'r-old', 0);
  held.hold('new', 'r-new', 10_000);
  expect(held.takeExpiring(15_001).map((h) => h.messageId)).toEqual(['old']);
  expect(held.takeExpiring(25_001).map((h) => h.messageId)).toEqual(['new']);
});

test('a redelivery is reported, keeps the newer receipt handle and restarts the deadline', () => {
  const held = new HeldMessages(VISIBILITY_MS);
  expect(held.hold('a', 'r1', 0)).toBe(true);
  expect(held.hold('a', 'r2', 10_000)).toBe(false);
  expect(held.size).toBe(1);
  expect(held.handles(['a', 'unknown'])).toEqual([{ messageId: 'a', receiptHandle: 'r2' }]);
  expect(held.takeExpiring(15_001)).toEqual([]); // now ends at 40 s
  expect(held.takeExpiring(25_001)).toEqual([{ messageId: 'a', receiptHandle: 'r2' }]);
});

test('released messages are neither handed out nor extended', () => {
  const held = new HeldMessages(VISIBILITY_MS);
  held.hold('a', 'r1', 0);
  held.hold('b', 'r2', 0);
  held.release(['a']);
  expect(held.size).toBe(1);
  expect(held.handles(['a', 'b'])).toEqual([{ messageId: 'b', receiptHandle: 'r2' }]);
  expect(held.takeExpiring(20_000).map((h) => h.messageId)).toEqual(['b']);
});
