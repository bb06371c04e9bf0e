// The ingest activities' error classification (activities/ingest.ts), run in
// MockActivityEnvironment: what fails the run at once (a non-retryable ApplicationFailure
// naming the problem) and what is left for Temporal to retry. The SQS client is the real
// one; only its HTTP transport is replaced, answering as SQS answers. The drain pool (the
// worker threads) is a stand-in that records whether it was asked to run.
import { Readable } from 'node:stream';
import { SQSClient } from '@aws-sdk/client-sqs';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createIngestActivities, type IngestDeps } from '../../activities/ingest';
import { PermanentDrainError } from '../../lib/ingest/drain';
import { drainInput, withDefaults } from '../../lib/contract/ingest-options';

/** An SQS client whose every call gets this HTTP answer (or this network error). */
function sqsAnswering(answer: { status: number; body: object } | Error): SQSClient {
  // The shape of the SDK's HttpHandler (an HTTP response is duck-typed by its status and headers).
  const requestHandler = {
    async handle() {
      if (answer instanceof Error) throw answer;
      const body = Readable.from([Buffer.from(JSON.stringify(answer.body))]);
      return { response: { statusCode: answer.status, headers: { 'content-type': 'application/x-amz-json-1.0' }, body } };
    },
    updateHttpClientConfig() {},
    httpHandlerConfigs: () => ({}),
  };
  return new SQSClient({
    region: 'us-east-1',
    endpoint: 'http://sqs.test',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    requestHandler: requestHandler as never,
    maxAttempts: 1,
  });
}

function activities(over: { sqs?: SQSClient; run?: () => Promise<unknown> }) {
  const runs: unknown[] = [];
  const pool = {
    run: async (input: unknown) => (runs.push(input), over.run ? over.run() : Promise.reject(new Error('not scripted'))),
  };
  const deps = {
    db: {} as IngestDeps['db'],
    sqs: over.sqs ?? sqsAnswering(new Error('unused')),
    queueUrl: 'http://sqs.test/000000000000/logins',
    pool: pool as unknown as IngestDeps['pool'],
  };
  return { runs, acts: createIngestActivities(deps) };
}

const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A) =>
  new MockActivityEnvironment(undefined, { logger: quiet }).run(fn, ...args);
const failureOf = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected the activity to fail');
    },
    (err: unknown) => err,
  );
const validInput = () => drainInput(withDefaults({}), 1000);

describe('drainQueue refuses bad options non-retryably, before any message is touched', () => {
  test.each([
    ['a chunk of 0', { ...validInput(), chunkSize: 0 }, 'Ingest option batchSize=0 must be a whole number from 1 to 5000'],
    [
      'a fractional visibility timeout',
      { ...validInput(), visibilityTimeoutSeconds: 7.5 },
      'Ingest option visibilityTimeoutSeconds=7.5 must be a whole number from 5 to 43200',
    ],
    ['a missing option', { ...validInput(), pollers: undefined }, 'drainQueue option receiveConcurrency is missing'],
    ['no object at all', null, 'drainQueue needs an object of options'],
  ])('%s', async (_what, input, message) => {
    const { runs, acts } = activities({});
    const err = await failureOf(run(acts.drainQueue, input as never));
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'InvalidIngestOptions', nonRetryable: true, message });
    expect(runs).toEqual([]);
  });
});

test('drainQueue fails for good on a PermanentDrainError, with its code as the failure type', async () => {
  const { runs, acts } = activities({
    run: () =>
      Promise.reject(
        new PermanentDrainError(
          'The database refused a quarantine entry (SQLSTATE 42501); the messages stay in the queue.',
          'PermanentDbError',
        ),
      ),
  });
  const err = await failureOf(run(acts.drainQueue, validInput()));
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err).toMatchObject({ type: 'PermanentDbError', nonRetryable: true, message: expect.stringContaining('SQLSTATE 42501') });
  expect(runs).toHaveLength(1);
});

test('drainQueue leaves any other failure retryable, as it came', async () => {
  const outage = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  const { acts } = activities({ run: () => Promise.reject(outage) });
  const err = await failureOf(run(acts.drainQueue, validInput()));
  expect(err).toBe(outage);
  expect(err).not.toBeInstanceOf(ApplicationFailure);
});

describe('queueDepth', () => {
  test.each([
    ['a queue that does not exist', 400, 'com.amazonaws.sqs#QueueDoesNotExist', 'QueueDoesNotExist'],
    ['bad credentials', 403, 'com.amazon.coral.service#UnrecognizedClientException', 'UnrecognizedClientException'],
    ['access denied', 403, 'com.amazon.coral.service#AccessDeniedException', 'AccessDeniedException'],
  ])('fails for good on %s, saying what to check', async (_what, status, type, name) => {
    const { acts } = activities({ sqs: sqsAnswering({ status, body: { __type: type, message: 'refused by SQS' } }) });
    const err = await failureOf(run(acts.queueDepth));
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({
      type: name,
      nonRetryable: true,
      message: expect.stringContaining('Check SQS_QUEUE_URL, AWS_REGION and the AWS credentials'),
    });
  });

  test.each([
    ['throttling', { status: 400, body: { __type: 'com.amazonaws.sqs#RequestThrottled', message: 'slow down' } }],
    ['a server error', { status: 500, body: { __type: 'com.amazonaws.sqs#InternalError', message: 'try again' } }],
    ['the network', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4566'), { code: 'ECONNREFUSED' })],
  ])('leaves %s retryable', async (_what, answer) => {
    const { acts } = activities({ sqs: sqsAnswering(answer) });
    const err = await failureOf(run(acts.queueDepth));
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(ApplicationFailure);
  });

  test('reports what SQS counts', async () => {
    const { acts } = activities({
      sqs: sqsAnswering({
        status: 200,
        body: { Attributes: { ApproximateNumberOfMessages: '7', ApproximateNumberOfMessagesNotVisible: '3' } },
      }),
    });
    expect(await run(acts.queueDepth)).toEqual({ visible: 7, inFlight: 3 });
  });
});
