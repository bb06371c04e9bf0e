// lib/ingest/sqs.ts against an in-memory stand-in for the SQS client: only the logic that turns
// responses into ReceivedMessages and results (truncation, deduplication, failure mapping).
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import { cutUtf8, deleteMessages, isPermanentSqsError, MAX_BODY_BYTES, receiveMessages } from '../../lib/ingest/sqs';
import { transformMessage } from '../../lib/pipeline/transform';
import { testKeyring } from './helpers';

type Send = (command: unknown) => Promise<unknown>;
const fakeClient = (send: Send) => ({ send }) as unknown as SQSClient;

const message = (
  id: string,
  body: string,
  attributes: Record<string, string> = { SentTimestamp: '1714564800000', ApproximateReceiveCount: '1' },
): Message => ({
  MessageId: id,
  ReceiptHandle: `rh-${id}`,
  Body: body,
  Attributes: attributes,
});

/** A queue that hands out `messages` in order, 10 (or MaxNumberOfMessages) at a time. */
function queueOf(messages: Message[]) {
  const pending = [...messages];
  const calls: ReceiveMessageCommand['input'][] = [];
  const client = fakeClient(async (command) => {
    expect(command).toBeInstanceOf(ReceiveMessageCommand);
    const input = (command as ReceiveMessageCommand).input;
    calls.push(input);
    return { Messages: pending.splice(0, input.MaxNumberOfMessages ?? 1) };
  });
  return { client, calls };
}

const receiveOpts = { maxMessages: 100, waitTimeSeconds: 0, visibilityTimeoutSeconds: 30, concurrency: 4 };

describe('receiveMessages', () => {
  it('maps SQS messages to ReceivedMessages with their timestamps and receive counts', async () => {
    const { client } = queueOf([message('a', '{"x":1}'), message('b', 'ü', {})]);
    const received = await receiveMessages(client, 'q', receiveOpts);
    expect(received).toEqual([
      {
        messageId: 'a',
        receiptHandle: 'rh-a',
        body: '{"x":1}',
        bodyBytes: 7,
        bodyTruncated: false,
        sentTimestamp: 1714564800000,
        receiveCount: 1,
      },
      {
        messageId: 'b',
        receiptHandle: 'rh-b',
        body: 'ü',
        bodyBytes: 2,
        bodyTruncated: false,
        sentTimestamp: null,
        receiveCount: null,
      },
    ]);
  });

  it('cuts bodies longer than MAX_BODY_BYTES UTF-8 bytes, keeps the full byte count, and the cut body is quarantined as body_too_large', async () => {
    const exact = 'a'.repeat(MAX_BODY_BYTES);
    // 3,000 CJK characters: 9,000 bytes, though only 3,000 UTF-16 units (a length check would let it through).
    const cjk = JSON.stringify({ user_id: '界'.repeat(3000) });
    const { client } = queueOf([message('exact', exact), message('cjk', cjk)]);
    const [first, second] = await receiveMessages(client, 'q', receiveOpts);
    expect(first).toMatchObject({ body: exact, bodyTruncated: false, bodyBytes: MAX_BODY_BYTES });
    expect(second).toMatchObject({ bodyTruncated: true, bodyBytes: Buffer.byteLength(cjk) });
    expect(cjk.length).toBeLessThan(MAX_BODY_BYTES);
    expect(Buffer.byteLength(second.body)).toBeLessThanOrEqual(MAX_BODY_BYTES);
    expect(cjk.startsWith(second.body)).toBe(true);
    const outcome = transformMessage(testKeyring(), second);
    expect(outcome.kind === 'quarantine' && outcome.entry.reasons).toEqual(['body_too_large']);
  });

  it('keeps one entry per message ID, with the newest receipt handle', async () => {
    const again = { ...message('a', 'body'), ReceiptHandle: 'rh-a-2' };
    const { client } = queueOf([message('a', 'body'), message('b', 'body'), again]);
    const received = await receiveMessages(client, 'q', { ...receiveOpts, concurrency: 1 });
    expect(received.map((m) => [m.messageId, m.receiptHandle])).toEqual([
      ['a', 'rh-a-2'],
      ['b', 'rh-b'],
    ]);
  });

  it('stops at maxMessages and when a round brings nothing', async () => {
    const many = Array.from({ length: 45 }, (_, i) => message(`m${i}`, 'b'));
    const limited = queueOf(many);
    expect(await receiveMessages(limited.client, 'q', { ...receiveOpts, maxMessages: 25 })).toHaveLength(25);
    expect(limited.calls.map((c) => c.MaxNumberOfMessages)).toEqual([10, 10, 5]);

    const drained = queueOf(many.slice(0, 12));
    expect(await receiveMessages(drained.client, 'q', receiveOpts)).toHaveLength(12);
  });
});

describe('cutUtf8', () => {
  it('cuts at the byte budget without splitting a character', () => {
    expect(cutUtf8('abc', 3)).toEqual({ text: 'abc', bytes: 3, cut: false });
    expect(cutUtf8('abcd', 3)).toEqual({ text: 'abc', bytes: 4, cut: true });
    // 'é' is 2 bytes, '界' 3, '😀' 4 (a surrogate pair): a cut inside one backs off to its start.
    expect(cutUtf8('aé', 2)).toEqual({ text: 'a', bytes: 3, cut: true });
    expect(cutUtf8('界界', 5)).toEqual({ text: '界', bytes: 6, cut: true });
    expect(cutUtf8('a😀', 4)).toEqual({ text: 'a', bytes: 5, cut: true });
    expect(cutUtf8('a😀b', 5)).toEqual({ text: 'a😀', bytes: 6, cut: true });
  });

  it('counts a lone surrogate as the 3 bytes Node sends for it (U+FFFD)', () => {
    const lone = 'a\ud800b';
    expect(Buffer.byteLength(lone)).toBe(5);
    expect(cutUtf8(lone, 4)).toEqual({ text: 'a\ud800', bytes: 5, cut: true });
  });

  it('never returns more bytes than asked, for any mix of widths', () => {
    const chars = ['a', 'é', '界', '😀', '\ud800'];
    for (let seed = 0; seed < 200; seed++) {
      let text = '';
      for (let i = 0; i < 50; i++) text += chars[(seed * 7 + i * 13 + i * i) % chars.length];
      const budget = seed % 120;
      const { text: kept, cut } = cutUtf8(text, budget);
      expect(Buffer.byteLength(kept)).toBeLessThanOrEqual(budget);
      expect(text.startsWith(kept)).toBe(true);
      expect(cut).toBe(Buffer.byteLength(text) > budget);
      // Nothing more would have fitted: the next character is wider than what is left.
      if (cut)
        expect(Buffer.byteLength(text.slice(0, kept.length + (text.codePointAt(kept.length)! > 0xffff ? 2 : 1)))).toBeGreaterThan(
          budget,
        );
    }
  });
});

describe('isPermanentSqsError', () => {
  it('marks configuration errors as permanent and outages as worth retrying', () => {
    expect(isPermanentSqsError(Object.assign(new Error('x'), { name: 'QueueDoesNotExist' }))).toBe(true);
    expect(isPermanentSqsError(Object.assign(new Error('x'), { name: 'InvalidClientTokenId' }))).toBe(true);
    expect(isPermanentSqsError(Object.assign(new Error('x'), { name: 'ECONNREFUSED' }))).toBe(false);
    expect(isPermanentSqsError(undefined)).toBe(false);
  });
});

describe('deleteMessages', () => {
  it('deletes in chunks of 10 and reports per-entry failures by message ID', async () => {
    const chunks: string[][] = [];
    const client = fakeClient(async (command) => {
      expect(command).toBeInstanceOf(DeleteMessageBatchCommand);
      const entries = (command as DeleteMessageBatchCommand).input.Entries ?? [];
      chunks.push(entries.map((e) => e.ReceiptHandle!));
      // Refuse the entry whose receipt handle ends in 7 (an expired handle).
      return {
        Successful: entries.filter((e) => !e.ReceiptHandle!.endsWith('7')).map((e) => ({ Id: e.Id })),
        Failed: entries
          .filter((e) => e.ReceiptHandle!.endsWith('7'))
          .map((e) => ({ Id: e.Id, Code: 'ReceiptHandleIsInvalid', SenderFault: true })),
      };
    });
    const messages = Array.from({ length: 23 }, (_, i) => ({ messageId: `m${i}`, receiptHandle: `rh-${i}` }));
    const result = await deleteMessages(client, 'q', messages);
    expect(chunks.map((c) => c.length)).toEqual([10, 10, 3]);
    expect(result.deleted).toBe(21);
    expect(result.failed.sort((a, b) => a.messageId.localeCompare(b.messageId))).toEqual([
      { messageId: 'm17', code: 'ReceiptHandleIsInvalid' },
      { messageId: 'm7', code: 'ReceiptHandleIsInvalid' },
    ]);
  });
});
