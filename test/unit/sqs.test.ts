// lib/sqs.ts against an in-memory stand-in for the SQS client: only the logic that turns
// responses into ReceivedMessages and results (truncation, deduplication, failure mapping).
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import { deleteMessages, MAX_BODY_CHARS, receiveMessages } from '../../lib/sqs';
import { transformMessage } from '../../lib/transform';
import { testKeyring } from './helpers';

type Send = (command: unknown) => Promise<unknown>;
const fakeClient = (send: Send) => ({ send }) as unknown as SQSClient;

const message = (id: string, body: string, attributes: Record<string, string> = { SentTimestamp: '1714564800000', ApproximateReceiveCount: '1' }): Message => ({
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

const receiveOpts = { maxMessages: 100, waitTimeSeconds: 0, visibilityTimeoutSeconds: 30, concurrency: 4, maxBatchChars: 96 * MAX_BODY_CHARS };

describe('receiveMessages', () => {
  it('maps SQS messages to ReceivedMessages with their timestamps and receive counts', async () => {
    const { client } = queueOf([message('a', '{"x":1}'), message('b', 'ü', {})]);
    const received = await receiveMessages(client, 'q', receiveOpts);
    expect(received).toEqual([
      { messageId: 'a', receiptHandle: 'rh-a', body: '{"x":1}', bodyBytes: 7, bodyTruncated: false, sentTimestamp: 1714564800000, receiveCount: 1 },
      { messageId: 'b', receiptHandle: 'rh-b', body: 'ü', bodyBytes: 2, bodyTruncated: false, sentTimestamp: null, receiveCount: null },
    ]);
  });

  it('cuts bodies longer than MAX_BODY_CHARS, keeps the full byte count, and the cut body is quarantined as body_too_large', async () => {
    const exact = 'a'.repeat(MAX_BODY_CHARS);
    const long = JSON.stringify({ user_id: 'x'.repeat(MAX_BODY_CHARS) });
    const { client } = queueOf([message('exact', exact), message('long', long)]);
    const [first, second] = await receiveMessages(client, 'q', receiveOpts);
    expect(first).toMatchObject({ body: exact, bodyTruncated: false });
    expect(second).toMatchObject({ bodyTruncated: true, bodyBytes: long.length });
    expect(second.body).toBe(long.slice(0, MAX_BODY_CHARS));
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

  it('issues no call whose worst case would exceed the character budget', async () => {
    const { client, calls } = queueOf([message('a', 'b')]);
    // Less than one full call (10 messages of MAX_BODY_CHARS) fits: nothing is received.
    expect(await receiveMessages(client, 'q', { ...receiveOpts, maxBatchChars: 10 * MAX_BODY_CHARS - 1 })).toEqual([]);
    expect(calls).toEqual([]);
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
        Failed: entries.filter((e) => e.ReceiptHandle!.endsWith('7')).map((e) => ({ Id: e.Id, Code: 'ReceiptHandleIsInvalid', SenderFault: true })),
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
