// Embedded SQS: the fauxqs emulator in this process, speaking the AWS JSON protocol that
// @aws-sdk/client-sqs uses. In memory only. Used only when SQS_QUEUE_URL is not set.
import { importEsm } from './esm';

export interface EmbeddedSqsHandle {
  endpoint: string;
  queueUrl: string;
  stop(): Promise<void>;
}

export async function startEmbeddedSqs(opts: { port: number; queueName: string; region?: string }): Promise<EmbeddedSqsHandle> {
  const { startFauxqs } = await importEsm<typeof import('fauxqs')>('fauxqs');
  const server = await startFauxqs({ port: opts.port, logger: false, defaultRegion: opts.region ?? 'us-east-1' });
  const { queueUrl } = server.createQueue(opts.queueName);
  return { endpoint: server.address, queueUrl, stop: () => server.stop() };
}
