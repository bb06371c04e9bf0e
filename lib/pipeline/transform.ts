// lib/pipeline/: the pure steps one message goes through, parse → flatten (`flatten`) →
// validate (`validate`) → mask (`mask`), put together here. No I/O: it may import only
// lib/contract, the PII crypto (lib/pii/crypto, and the keyring's type), the pure checks of lib/platform (guards, iso-date),
// itself and ipaddr.js (test/unit/layout.test.ts checks), so every step is unit-tested alone. Its I/O
// (receiving, committing) is lib/ingest's. Start reading here, at transformMessage.
//
// This file: transform one received message into exactly one outcome: a masked row, or a
// quarantine entry with reason codes and the body encrypted. Pure apart from the random
// nonces; never throws for anything a message can contain.
import { flatten } from './flatten';
import type { Keyring } from '../pii/keyring';
import { mask, sealPii } from './mask';
import type { LoginRow, QuarantineEntry, ReceivedMessage, TransformedBatch } from '../contract/types';
import { validate } from './validate';

export type Outcome = { kind: 'row'; row: LoginRow } | { kind: 'quarantine'; entry: QuarantineEntry };

export function parseBody(message: ReceivedMessage): { ok: true; value: unknown } | { ok: false; reasons: string[] } {
  if (message.bodyTruncated) return { ok: false, reasons: ['body_too_large'] };
  try {
    return { ok: true, value: JSON.parse(message.body) };
  } catch {
    return { ok: false, reasons: ['invalid_json'] };
  }
}

export function quarantineEntry(keyring: Keyring, message: ReceivedMessage, reasons: string[]): QuarantineEntry {
  const sealed = sealPii(keyring, message.body, message.messageId, 'body');
  return {
    messageId: message.messageId,
    reasons,
    bodyCiphertext: sealed.blob.toString('base64'),
    piiKeyId: sealed.keyId,
    bodyBytes: message.bodyBytes,
    bodyTruncated: message.bodyTruncated,
    sentAt: message.sentTimestamp === null ? null : new Date(message.sentTimestamp).toISOString(),
  };
}

export function transformMessage(keyring: Keyring, message: ReceivedMessage, now = Date.now()): Outcome {
  const parsed = parseBody(message);
  const flat = parsed.ok ? flatten(parsed.value) : parsed;
  const valid = flat.ok ? validate(flat.event) : flat;
  if (!valid.ok) return { kind: 'quarantine', entry: quarantineEntry(keyring, message, valid.reasons) };
  const fallback = new Date(message.sentTimestamp ?? now);
  return { kind: 'row', row: mask(keyring, message.messageId, valid.event, fallback) };
}

export function transformBatch(keyring: Keyring, messages: ReceivedMessage[]): TransformedBatch {
  const batch: TransformedBatch = { rows: [], quarantine: [] };
  for (const message of messages) {
    const outcome = transformMessage(keyring, message);
    if (outcome.kind === 'row') batch.rows.push(outcome.row);
    else batch.quarantine.push(outcome.entry);
  }
  return batch;
}
