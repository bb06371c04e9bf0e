import crypto from 'node:crypto';
import { open } from '../../lib/pii/crypto';
import { sampleBodies } from '../../lib/ingest/load';
import { piiContext } from '../../lib/pipeline/mask';
import { parseBody, transformBatch, transformMessage } from '../../lib/pipeline/transform';
import type { QuarantineEntry, ReceivedMessage } from '../../lib/contract/types';
import { isWrongTypeSample, receivedMessage, testKeyring, validEvent } from './helpers';

const keyring = testKeyring({ ids: ['k-transform'] });

const openBody = (entry: QuarantineEntry) =>
  open(
    keyring,
    { keyId: entry.piiKeyId, blob: Buffer.from(entry.bodyCiphertext, 'base64') },
    piiContext(entry.messageId, 'body'),
  ).toString('utf8');

/** Exactly one outcome, whatever the body: returns its quarantine reasons, or null for a row. */
function outcomeReasons(message: ReceivedMessage): string[] | null {
  const batch = transformBatch(keyring, [message]);
  expect(batch.rows.length + batch.quarantine.length).toBe(1);
  return batch.quarantine[0]?.reasons ?? null;
}

describe('transformBatch over data/sample.json', () => {
  const bodies = sampleBodies();
  const messages = bodies.map((body) => receivedMessage(body));
  const batch = transformBatch(keyring, messages);
  const events = bodies.map((b) => JSON.parse(b) as Record<string, unknown>);
  const loginEvents = events.filter((e) => !isWrongTypeSample(e));

  it('gives 99 rows and 1 quarantine entry with reasons ["unknown_shape"]', () => {
    expect(bodies).toHaveLength(100);
    expect(batch.rows).toHaveLength(99);
    expect(batch.quarantine).toHaveLength(1);
    expect(batch.quarantine[0].reasons).toEqual(['unknown_shape']);
  });

  it('quarantines exactly the wrong-type message and keeps every other message as its own row', () => {
    const wrongIndex = events.findIndex(isWrongTypeSample);
    expect(batch.quarantine[0].messageId).toBe(messages[wrongIndex].messageId);
    expect(batch.rows.map((r) => r.messageId)).toEqual(messages.filter((_, i) => i !== wrongIndex).map((m) => m.messageId));
    expect(batch.rows.map((r) => r.userId)).toEqual(loginEvents.map((e) => e.user_id));
  });

  it('stores no sample IP or device ID in plain text in any row or quarantine entry', () => {
    const text = JSON.stringify(batch);
    const secrets = loginEvents.flatMap((e) => [String(e.ip), String(e.device_id)]);
    expect(secrets).toHaveLength(198);
    const leaked = secrets.filter((s) => text.includes(s));
    expect(leaked).toEqual([]);
    // Per row as well, so a leak points at its row.
    for (const [i, row] of batch.rows.entries()) {
      const rowText = JSON.stringify(row);
      expect(rowText).not.toContain(String(loginEvents[i].ip));
      expect(rowText).not.toContain(String(loginEvents[i].device_id));
    }
  });

  it('keeps the PII recoverable: each row’s ciphertexts open to the sample’s values', () => {
    for (const [i, row] of batch.rows.entries()) {
      const ip = open(
        keyring,
        { keyId: row.piiKeyId, blob: Buffer.from(row.ipCiphertext, 'base64') },
        piiContext(row.messageId, 'ip'),
      );
      const deviceId = open(
        keyring,
        { keyId: row.piiKeyId, blob: Buffer.from(row.deviceIdCiphertext, 'base64') },
        piiContext(row.messageId, 'device_id'),
      );
      expect(ip.toString()).toBe(loginEvents[i].ip);
      expect(deviceId.toString()).toBe(loginEvents[i].device_id);
    }
  });

  it('gives every sample row a distinct masked IP and device ID (the sample has no repeats)', () => {
    expect(new Set(batch.rows.map((r) => r.maskedIp)).size).toBe(99);
    expect(new Set(batch.rows.map((r) => r.maskedDeviceId)).size).toBe(99);
  });

  it('uses the SentTimestamp as create date, since the sample events carry none', () => {
    for (const row of batch.rows) {
      const message = messages.find((m) => m.messageId === row.messageId)!;
      expect(row.createDate).toBe(new Date(message.sentTimestamp!).toISOString());
    }
  });

  it('encrypts the quarantined body so that it decrypts to the exact original body', () => {
    const entry = batch.quarantine[0];
    const original = messages.find((m) => m.messageId === entry.messageId)!;
    expect(openBody(entry)).toBe(original.body);
    expect(entry).toMatchObject({
      bodyBytes: Buffer.byteLength(original.body),
      bodyTruncated: false,
      sentAt: new Date(original.sentTimestamp!).toISOString(),
      piiKeyId: 'k-transform',
    });
    // Bound to its message: another message's context does not open it.
    expect(() =>
      open(
        keyring,
        { keyId: entry.piiKeyId, blob: Buffer.from(entry.bodyCiphertext, 'base64') },
        piiContext('another-message', 'body'),
      ),
    ).toThrow();
  });
});

describe('transformMessage: message-level failures', () => {
  it('quarantines invalid JSON as invalid_json, with the body recoverable', () => {
    const message = receivedMessage('{"user_id": "truncated');
    const outcome = transformMessage(keyring, message);
    expect(outcome.kind).toBe('quarantine');
    if (outcome.kind !== 'quarantine') return;
    expect(outcome.entry.reasons).toEqual(['invalid_json']);
    expect(openBody(outcome.entry)).toBe(message.body);
  });

  it('quarantines a truncated body as body_too_large without parsing it', () => {
    // A valid event: only the truncation flag can make it fail.
    const message = receivedMessage(JSON.stringify(validEvent()), { bodyTruncated: true, bodyBytes: 100_000 });
    const outcome = transformMessage(keyring, message);
    expect(outcome.kind).toBe('quarantine');
    if (outcome.kind !== 'quarantine') return;
    expect(outcome.entry).toMatchObject({ reasons: ['body_too_large'], bodyTruncated: true, bodyBytes: 100_000 });
    expect(parseBody(message)).toEqual({ ok: false, reasons: ['body_too_large'] });
  });

  it('quarantines flatten and validate failures with their reasons, and no PII in the entry', () => {
    const message = receivedMessage(JSON.stringify(validEvent({ ip: '300.2.3.4', device_id: 'dev-secret-77', extra: 1 })));
    expect(outcomeReasons(message)).toEqual(['unknown_field']);
    const invalid = receivedMessage(JSON.stringify(validEvent({ ip: '300.2.3.4', device_id: 'dev-secret-77' })));
    const outcome = transformMessage(keyring, invalid);
    expect(outcome.kind === 'quarantine' && outcome.entry.reasons).toEqual(['invalid_ip']);
    expect(JSON.stringify(outcome)).not.toContain('300.2.3.4');
    expect(JSON.stringify(outcome)).not.toContain('dev-secret-77');
  });

  it('records sentAt as null when SQS gave no SentTimestamp, and a row then falls back to now', () => {
    const bad = transformMessage(keyring, receivedMessage('nope', { sentTimestamp: null }));
    expect(bad.kind === 'quarantine' && bad.entry.sentAt).toBeNull();
    const now = Date.UTC(2025, 0, 2, 3, 4, 5);
    const good = transformMessage(keyring, receivedMessage(JSON.stringify(validEvent()), { sentTimestamp: null }), now);
    expect(good.kind === 'row' && good.row.createDate).toBe(new Date(now).toISOString());
  });

  it('prefers a valid create_date in the event over the SentTimestamp', () => {
    const outcome = transformMessage(
      keyring,
      receivedMessage(JSON.stringify(validEvent({ create_date: '2024-02-03T04:05:06Z' }))),
    );
    expect(outcome.kind === 'row' && outcome.row.createDate).toBe('2024-02-03T04:05:06.000Z');
  });
});

describe('transformBatch: hostile bodies never throw and give exactly one outcome each', () => {
  const hostile: [string, string][] = [
    ['10000 levels of nested arrays', '['.repeat(10_000) + ']'.repeat(10_000)],
    ['10000 levels of nested objects', '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000)],
    ['10000 levels nested under a known container', '{"user":'.repeat(10_000) + '1' + '}'.repeat(10_000)],
    ['10000 unclosed brackets', '['.repeat(10_000)],
    ['8 KiB of random bytes as latin1', crypto.randomBytes(8 * 1024).toString('latin1')],
    ['8 KiB of random base64', crypto.randomBytes(6 * 1024).toString('base64')],
    ['a JSON string of 1 MB', JSON.stringify('x'.repeat(1024 * 1024))],
    ['an object with 1 MB of user_id', JSON.stringify(validEvent({ user_id: 'u'.repeat(1024 * 1024) }))],
    ['an empty body', ''],
    ['the JSON literal null', 'null'],
    ['a JSON number', '1e400'],
    ['a body of NUL characters', '\u0000'.repeat(100)],
    ['10000 keys', JSON.stringify(Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, i])))],
    ['a __proto__ payload', '{"__proto__": {"ip": "1.2.3.4", "user_id": "x"}, "constructor": {"prototype": {"x": 1}}}'],
  ];

  it.each(hostile)('%s', (_name, body) => {
    const message = receivedMessage(body);
    let reasons: string[] | null = null;
    expect(() => {
      reasons = outcomeReasons(message);
    }).not.toThrow();
    expect(reasons).not.toBeNull(); // none of them is a login event
    expect(({} as Record<string, unknown>).ip).toBeUndefined();
  });

  it('gives the expected reasons for the hostile shapes', () => {
    const reasons = (body: string) => outcomeReasons(receivedMessage(body));
    expect(reasons('['.repeat(10_000) + ']'.repeat(10_000))).toEqual(['not_an_object']);
    expect(reasons('{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000))).toEqual(['unknown_shape']);
    expect(reasons('['.repeat(10_000))).toEqual(['invalid_json']);
    expect(reasons(JSON.stringify('x'.repeat(1024 * 1024)))).toEqual(['not_an_object']);
    expect(reasons(JSON.stringify(validEvent({ user_id: 'u'.repeat(1024 * 1024) })))).toEqual(['too_long:user_id']);
    expect(reasons('')).toEqual(['invalid_json']);
  });

  it('handles a whole batch of hostile bodies, one outcome per message', () => {
    const messages = [...hostile.map(([, body]) => receivedMessage(body)), receivedMessage(JSON.stringify(validEvent()))];
    const batch = transformBatch(keyring, messages);
    expect(batch.rows).toHaveLength(1);
    expect(batch.quarantine).toHaveLength(hostile.length);
    const ids = [...batch.rows.map((r) => r.messageId), ...batch.quarantine.map((q) => q.messageId)].sort();
    expect(ids).toEqual(messages.map((m) => m.messageId).sort());
  });

  it('round-trips a 1 MB quarantined body exactly', () => {
    const body = JSON.stringify('x'.repeat(1024 * 1024));
    const entry = transformBatch(keyring, [receivedMessage(body)]).quarantine[0];
    expect(openBody(entry)).toBe(body);
  });
});
