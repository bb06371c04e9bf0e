// SQS access: the client and the three calls the pipeline makes. Works against AWS SQS and
// any implementation of its JSON protocol (LocalStack, ElasticMQ, moto, fauxqs): only the
// queue URL that the service itself returned is used, never one built by hand.
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import type { Config } from './config';
import type { AcknowledgeResult, QueueDepth, ReceivedMessage } from './types';

/** Bodies longer than this are cut (and quarantined as body_too_large) so batches stay well under Temporal's payload limit. */
export const MAX_BODY_CHARS = 8 * 1024;
const MAX_PER_CALL = 10;

export function createSqsClient(sqs: Config['sqs']): SQSClient {
  return new SQSClient({
    region: sqs.region,
    // With an explicit endpoint (AWS_ENDPOINT_URL_SQS or the embedded emulator), calls go
    // there rather than to the host inside the queue URL, which emulators do not always
    // make resolvable.
    ...(sqs.endpoint ? { endpoint: sqs.endpoint, useQueueUrlAsEndpoint: false } : {}),
    // The embedded emulator accepts any credentials; everywhere else the SDK's default chain applies.
    ...(sqs.embedded ? { credentials: { accessKeyId: 'embedded', secretAccessKey: 'embedded' } } : {}),
  });
}

export async function queueDepth(client: SQSClient, queueUrl: string): Promise<QueueDepth> {
  const { Attributes = {} } = await client.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(Attributes.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
  };
}

function toReceived(m: Message): ReceivedMessage {
  const body = m.Body ?? '';
  const bodyTruncated = body.length > MAX_BODY_CHARS;
  const sent = Number(m.Attributes?.SentTimestamp);
  const count = Number(m.Attributes?.ApproximateReceiveCount);
  return {
    messageId: m.MessageId!,
    receiptHandle: m.ReceiptHandle!,
    body: bodyTruncated ? body.slice(0, MAX_BODY_CHARS) : body,
    bodyBytes: Buffer.byteLength(body, 'utf8'),
    bodyTruncated,
    sentTimestamp: Number.isFinite(sent) ? sent : null,
    receiveCount: Number.isFinite(count) ? count : null,
  };
}

export interface ReceiveOptions {
  maxMessages: number;
  waitTimeSeconds: number;
  visibilityTimeoutSeconds: number;
  concurrency: number;
  /** Stop polling once the bodies received reach this many characters. */
  maxBatchChars: number;
  /** Called after every round of calls (the activity heartbeats here). */
  onProgress?: (received: number) => void;
}

/**
 * Receives up to `maxMessages` with rounds of concurrent long polls (10 messages a call).
 * A round only issues calls whose worst case still fits the size budget, so a batch never
 * outgrows it however large the bodies are. Ends early on a round that brings less than
 * half of what it asked for.
 */
export async function receiveMessages(client: SQSClient, queueUrl: string, opts: ReceiveOptions): Promise<ReceivedMessage[]> {
  const byId = new Map<string, ReceivedMessage>();
  let chars = 0;
  for (;;) {
    const wanted = opts.maxMessages - byId.size;
    const fitBudget = Math.floor((opts.maxBatchChars - chars) / (MAX_PER_CALL * MAX_BODY_CHARS));
    const calls = Math.min(opts.concurrency, Math.ceil(wanted / MAX_PER_CALL), fitBudget);
    if (calls <= 0) break;
    const rounds = await Promise.all(
      Array.from({ length: calls }, (_, i) =>
        client.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: Math.min(MAX_PER_CALL, wanted - i * MAX_PER_CALL),
            WaitTimeSeconds: opts.waitTimeSeconds,
            VisibilityTimeout: opts.visibilityTimeoutSeconds,
            MessageSystemAttributeNames: ['SentTimestamp', 'ApproximateReceiveCount'],
            // The older spelling of the same request, for implementations that predate the new one.
            AttributeNames: ['All'],
          }),
        ),
      ),
    );
    let got = 0;
    for (const { Messages = [] } of rounds) {
      for (const m of Messages) {
        if (!m.MessageId || !m.ReceiptHandle) continue;
        const received = toReceived(m);
        // The same message twice in one batch (a standard queue may redeliver): keep the newest handle.
        if (!byId.has(received.messageId)) chars += received.body.length;
        byId.set(received.messageId, received);
        got++;
      }
    }
    opts.onProgress?.(byId.size);
    // A round well short of what it asked for means the queue is (nearly) drained for now:
    // hand on what we have rather than wait out another long poll.
    if (got < (calls * MAX_PER_CALL) / 2 || byId.size >= opts.maxMessages) break;
  }
  return [...byId.values()];
}

/** Deletes in calls of 10, concurrently; per-entry failures are reported, not thrown. */
export async function deleteMessages(
  client: SQSClient,
  queueUrl: string,
  messages: { messageId: string; receiptHandle: string }[],
): Promise<AcknowledgeResult> {
  const chunks: (typeof messages)[] = [];
  for (let i = 0; i < messages.length; i += MAX_PER_CALL) chunks.push(messages.slice(i, i + MAX_PER_CALL));
  const result: AcknowledgeResult = { deleted: 0, failed: [] };
  await Promise.all(
    chunks.map(async (chunk) => {
      const out = await client.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: chunk.map((m, i) => ({ Id: String(i), ReceiptHandle: m.receiptHandle })),
        }),
      );
      result.deleted += out.Successful?.length ?? 0;
      for (const f of out.Failed ?? []) result.failed.push({ messageId: chunk[Number(f.Id)].messageId, code: f.Code ?? 'unknown' });
    }),
  );
  return result;
}

/** Sends bodies in calls of 10; returns the message IDs SQS assigned. Throws if any entry fails. */
export async function sendMessages(client: SQSClient, queueUrl: string, bodies: string[], concurrency = 8): Promise<string[]> {
  const ids: string[] = new Array(bodies.length);
  let next = 0;
  const sendChunk = async (): Promise<void> => {
    while (next < bodies.length) {
      const start = next;
      next += MAX_PER_CALL;
      const chunk = bodies.slice(start, start + MAX_PER_CALL);
      const out = await client.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: chunk.map((MessageBody, i) => ({ Id: String(i), MessageBody })),
        }),
      );
      if (out.Failed?.length) {
        const f = out.Failed[0];
        throw new Error(`SQS refused ${out.Failed.length} message(s) of a batch: ${f.Code} ${f.Message ?? ''}`);
      }
      for (const s of out.Successful ?? []) ids[start + Number(s.Id)] = s.MessageId!;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, sendChunk));
  return ids;
}
