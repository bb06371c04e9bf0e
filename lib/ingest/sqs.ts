// SQS access: the client and the three calls the pipeline makes. Works against AWS SQS and
// any implementation of its JSON protocol (LocalStack, ElasticMQ, moto, fauxqs): only the
// queue URL that the service itself returned is used, never one built by hand.
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
  type Message,
  type MessageSystemAttributeName,
  type QueueAttributeName,
} from '@aws-sdk/client-sqs';
import type { Config } from '../platform/config';
import type { AcknowledgeResult, QueueDepth, ReceivedMessage } from '../contract/types';

/**
 * Bodies longer than this many UTF-8 bytes are cut (and quarantined as body_too_large): a
 * quarantine entry keeps the first 8 KiB of the body, sealed, never more.
 */
export const MAX_BODY_BYTES = 8 * 1024;
export const MAX_PER_CALL = 10;
const MAX_SOCKETS = 4096;

export function createSqsClient(sqs: Config['sqs']): SQSClient {
  return new SQSClient({
    region: sqs.region,
    // With an explicit endpoint (AWS_ENDPOINT_URL_SQS or the embedded emulator), calls go
    // there rather than to the host inside the queue URL, which emulators do not always
    // make resolvable.
    ...(sqs.endpoint ? { endpoint: sqs.endpoint, useQueueUrlAsEndpoint: false } : {}),
    // The embedded emulator accepts any credentials; everywhere else the SDK's default chain applies.
    ...(sqs.embedded ? { credentials: { accessKeyId: 'embedded', secretAccessKey: 'embedded' } } : {}),
    // Long polls hold a socket each: the SDK's default of 50 would queue a drain's pollers
    // (up to 50 a thread, more with several drains) behind one another.
    // Resolve each command's middleware stack once per client instead of on every call
    // (measured: about 10% of the SDK's CPU per receive + delete). It applies only to
    // `send(command)` with no options object: pass one only when there is something in it.
    cacheMiddleware: true,
    requestHandler: {
      httpAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
      httpsAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
    },
  });
}

/** SQS's approximate counts of visible and in-flight messages (one GetQueueAttributes call). */
export async function getApproximateCounts(client: SQSClient, queueUrl: string): Promise<QueueDepth> {
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

/**
 * The first `maxBytes` UTF-8 bytes of `text`, never splitting a character (a cut inside a
 * multi-byte character or a surrogate pair backs off to the character's start).
 */
export function cutUtf8(text: string, maxBytes: number): { text: string; bytes: number; cut: boolean } {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes <= maxBytes) return { text, bytes, cut: false };
  // Each UTF-16 unit is at most 3 UTF-8 bytes, so the cut lies within the first maxBytes units.
  let used = 0;
  let i = 0;
  while (i < text.length) {
    const code = text.codePointAt(i)!;
    const units = code > 0xffff ? 2 : 1;
    const size = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    if (used + size > maxBytes) break;
    used += size;
    i += units;
  }
  return { text: text.slice(0, i), bytes, cut: true };
}

export function toReceived(m: Message): ReceivedMessage {
  const { text, bytes, cut } = cutUtf8(m.Body ?? '', MAX_BODY_BYTES);
  const sent = Number(m.Attributes?.SentTimestamp);
  const count = Number(m.Attributes?.ApproximateReceiveCount);
  return {
    messageId: m.MessageId!,
    receiptHandle: m.ReceiptHandle!,
    body: text,
    bodyBytes: bytes,
    bodyTruncated: cut,
    sentTimestamp: Number.isFinite(sent) ? sent : null,
    receiveCount: Number.isFinite(count) ? count : null,
  };
}

/** The message attributes toReceived reads. */
const RECEIVE_ATTRIBUTES: MessageSystemAttributeName[] = ['SentTimestamp', 'ApproximateReceiveCount'];

export interface ReceiveCall {
  /** 1 to 10. */
  maxMessages: number;
  waitTimeSeconds: number;
  visibilityTimeoutSeconds: number;
}

/** One ReceiveMessage call; messages without an ID or receipt handle are dropped. */
export async function receiveOnce(
  client: SQSClient,
  queueUrl: string,
  call: ReceiveCall,
  signal?: AbortSignal,
): Promise<ReceivedMessage[]> {
  const command = new ReceiveMessageCommand({
    QueueUrl: queueUrl,
    MaxNumberOfMessages: call.maxMessages,
    WaitTimeSeconds: call.waitTimeSeconds,
    VisibilityTimeout: call.visibilityTimeoutSeconds,
    MessageSystemAttributeNames: RECEIVE_ATTRIBUTES,
    // The older spelling of the same request, for implementations that predate the new one.
    // Only the two attributes toReceived reads: 'All' brought every attribute of every message
    // to be parsed and dropped (measured: about 3% of a receive and delete's client CPU). The
    // SDK types this field with queue attribute names; SQS takes message attributes in it.
    AttributeNames: RECEIVE_ATTRIBUTES as unknown as QueueAttributeName[],
  });
  // No options object without a signal: it would bypass the client's cached middleware (createSqsClient).
  const { Messages = [] } = await (signal ? client.send(command, { abortSignal: signal }) : client.send(command));
  return Messages.filter((m) => m.MessageId && m.ReceiptHandle).map(toReceived);
}

export interface ReceiveOptions extends Omit<ReceiveCall, 'maxMessages'> {
  maxMessages: number;
  /** Concurrent calls per round. */
  concurrency: number;
}

/**
 * Receives up to `maxMessages` in rounds of concurrent calls, ending early on a round that
 * brings less than half of what it asked for. For tools and tests that want to hold
 * messages; the ingest itself streams with receiveOnce (lib/ingest/drain.ts).
 */
export async function receiveMessages(client: SQSClient, queueUrl: string, opts: ReceiveOptions): Promise<ReceivedMessage[]> {
  const byId = new Map<string, ReceivedMessage>();
  for (;;) {
    const wanted = opts.maxMessages - byId.size;
    const calls = Math.min(opts.concurrency, Math.ceil(wanted / MAX_PER_CALL));
    if (calls <= 0) break;
    const rounds = await Promise.all(
      Array.from({ length: calls }, (_, i) =>
        receiveOnce(client, queueUrl, { ...opts, maxMessages: Math.min(MAX_PER_CALL, wanted - i * MAX_PER_CALL) }),
      ),
    );
    let got = 0;
    for (const m of rounds.flat()) {
      byId.set(m.messageId, m); // the same message twice (a redelivery): keep the newest handle
      got++;
    }
    if (got < (calls * MAX_PER_CALL) / 2 || byId.size >= opts.maxMessages) break;
  }
  return [...byId.values()];
}

/** Extends (or ends, with 0 s) the visibility of held messages, in calls of 10; returns the entries SQS refused. */
export async function changeVisibility(
  client: SQSClient,
  queueUrl: string,
  messages: { messageId: string; receiptHandle: string }[],
  visibilityTimeoutSeconds: number,
): Promise<number> {
  let failed = 0;
  await Promise.all(
    chunksOf(messages, MAX_PER_CALL).map(async (chunk) => {
      const out = await client.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: chunk.map((m, i) => ({
            Id: String(i),
            ReceiptHandle: m.receiptHandle,
            VisibilityTimeout: visibilityTimeoutSeconds,
          })),
        }),
      );
      failed += out.Failed?.length ?? 0;
    }),
  );
  return failed;
}

function chunksOf<T>(items: T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

/** Deletes in calls of 10, concurrently; per-entry failures are reported, not thrown. */
export async function deleteMessages(
  client: SQSClient,
  queueUrl: string,
  messages: { messageId: string; receiptHandle: string }[],
): Promise<AcknowledgeResult> {
  const result: AcknowledgeResult = { deleted: 0, failed: [] };
  await Promise.all(
    chunksOf(messages, MAX_PER_CALL).map(async (chunk) => {
      const out = await client.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: chunk.map((m, i) => ({ Id: String(i), ReceiptHandle: m.receiptHandle })),
        }),
      );
      result.deleted += out.Successful?.length ?? 0;
      for (const f of out.Failed ?? [])
        result.failed.push({ messageId: chunk[Number(f.Id)].messageId, code: f.Code ?? 'unknown' });
    }),
  );
  return result;
}

/** Sends bodies in calls of 10; returns the message IDs SQS assigned. Throws if any entry fails. */
export async function sendMessages(client: SQSClient, queueUrl: string, bodies: string[], concurrency = 8): Promise<string[]> {
  const ids = new Array<string>(bodies.length);
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

/** SQS errors that mean the configuration is wrong, not that the service is briefly away. */
const PERMANENT_SQS_ERRORS = new Set([
  'QueueDoesNotExist',
  'AWS.SimpleQueueService.NonExistentQueue',
  'AccessDenied',
  'AccessDeniedException',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'SignatureDoesNotMatch',
  'InvalidAddress',
  // No credentials anywhere in the SDK's chain (its providers retry transient failures themselves).
  'CredentialsProviderError',
]);

export function isPermanentSqsError(err: unknown): boolean {
  return PERMANENT_SQS_ERRORS.has((err as Error)?.name ?? '');
}
