// The ingest activities: every side effect of a drain, one concern each. They are thin:
// the work itself lives in lib/ (sqs.ts, transform.ts, persist.ts), so it can be tested
// and reused without Temporal. Errors that retrying cannot fix are raised as
// non-retryable; everything else is retried by Temporal with backoff.
import { Context, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { isPermanentDbError, sqlState, type Db } from '../lib/db';
import { refreshKeyring, type Keyring } from '../lib/keyring';
import { recordDeleteFailed, recordOutcomes, recordReceived, setQueueDepth, startStage } from '../lib/metrics'; // issue 12
import { persistBatchIsolating as persist } from '../lib/persist';
import { deleteMessages, MAX_BODY_CHARS, queueDepth as depth, receiveMessages } from '../lib/sqs';
import { transformBatch as transform } from '../lib/transform';
import type { AcknowledgeResult, PersistResult, QueueDepth, ReceivedMessage, TransformedBatch } from '../lib/types';

export interface IngestDeps {
  db: Db;
  sqs: SQSClient;
  queueUrl: string;
  keyring: Keyring;
}

export interface ReceiveInput {
  maxMessages: number;
  waitTimeSeconds: number;
  visibilityTimeoutSeconds: number;
  concurrency: number;
}

/** A batch's received bodies stay under this many characters (Temporal's payload limit is 2 MB). */
export const MAX_BATCH_CHARS = 96 * MAX_BODY_CHARS;

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
]);

function sqsFailure(err: unknown, what: string): never {
  const name = (err as Error)?.name ?? 'Error';
  if (PERMANENT_SQS_ERRORS.has(name)) {
    throw ApplicationFailure.nonRetryable(
      `${what} failed with ${name}: ${(err as Error).message}. Check SQS_QUEUE_URL, AWS_REGION and the AWS credentials.`,
      name,
    );
  }
  throw err;
}

export function createIngestActivities({ db, sqs, queueUrl, keyring }: IngestDeps) {
  return {
    async queueDepth(): Promise<QueueDepth> {
      const d = await depth(sqs, queueUrl).catch((err) => sqsFailure(err, 'GetQueueAttributes'));
      setQueueDepth(d); // issue 12
      return d;
    },

    async receiveBatch(input: ReceiveInput): Promise<ReceivedMessage[]> {
      const end = startStage('receive'); // issue 12
      const messages = await receiveMessages(sqs, queueUrl, {
        ...input,
        maxBatchChars: MAX_BATCH_CHARS,
        onProgress: (n) => Context.current().heartbeat(n),
      }).catch((err) => sqsFailure(err, 'ReceiveMessage'));
      if (messages.length) recordReceived(messages.length, end); // issue 12: empty polls are not batches
      log.info('Received batch', { messages: messages.length });
      return messages;
    },

    async transformBatch(messages: ReceivedMessage[]): Promise<TransformedBatch> {
      const end = startStage('transform'); // issue 12
      await refreshKeyring(keyring); // a rotated key is used for new rows at once
      const transformed = transform(keyring, messages);
      end(messages.length); // issue 12
      return transformed;
    },

    async persistBatch(batch: TransformedBatch): Promise<PersistResult> {
      try {
        const end = startStage('persist'); // issue 12
        const result = await persist(db, keyring, batch);
        recordOutcomes(result, end); // issue 12
        log.info('Persisted batch', { ...result });
        return result;
      } catch (err) {
        if (isPermanentDbError(err)) {
          // A quarantine entry the database refuses: not retried (the same statement would
          // fail again), and the messages stay in the queue.
          throw ApplicationFailure.nonRetryable(`The database refused the batch (SQLSTATE ${sqlState(err)}): ${(err as Error).message}`, 'PermanentDbError');
        }
        throw err;
      }
    },

    async acknowledgeBatch(messages: { messageId: string; receiptHandle: string }[]): Promise<AcknowledgeResult> {
      const end = startStage('acknowledge'); // issue 12
      const result = await deleteMessages(sqs, queueUrl, messages).catch((err) => sqsFailure(err, 'DeleteMessageBatch'));
      recordDeleteFailed(result.failed.length, end, messages.length); // issue 12
      if (result.failed.length) log.warn('Some deletes failed; those messages will be redelivered and deduplicated', { failed: result.failed.length });
      return result;
    },
  };
}

export type IngestActivities = ReturnType<typeof createIngestActivities>;
