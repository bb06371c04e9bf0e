// Embedded SQS: the fauxqs emulator, in this process or in one of its own, speaking the AWS JSON protocol that
// @aws-sdk/client-sqs uses. In memory only. Used only when SQS_QUEUE_URL is not set.
import path from 'node:path';
import { importEsm } from './esm';

export interface EmbeddedSqsHandle {
  endpoint: string;
  queueUrl: string;
  /** The emulator's own process, when it has one. */
  pid?: number;
  stop: () => Promise<void>;
}

export async function startEmbeddedSqs(opts: { port: number; queueName: string; region?: string }): Promise<EmbeddedSqsHandle> {
  const { startFauxqs } = await importEsm<typeof import('fauxqs')>('fauxqs');
  const server = await startFauxqs({ port: opts.port, logger: false, defaultRegion: opts.region ?? 'us-east-1' });
  const { queueUrl } = server.createQueue(opts.queueName);
  return { endpoint: server.address, queueUrl, stop: () => server.stop() };
}

/** The emulator in a child process of its own (services/sqs-server.ts). */
export async function startSqsProcess(opts: { port: number; region?: string }): Promise<EmbeddedSqsHandle> {
  const { spawn } = await import('node:child_process');
  const child = spawn(
    process.execPath,
    [
      '-r',
      'ts-node/register/transpile-only',
      path.join(__dirname, 'sqs-server.ts'),
      String(opts.port),
      opts.region ?? 'us-east-1',
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (out.includes('\n')) resolve(out.split('\n')[0]);
    });
    child.once('exit', (code) => reject(new Error(`The SQS emulator process exited (code ${code}) before it listened`)));
  });
  const { endpoint, queueUrl } = JSON.parse(line) as { endpoint: string; queueUrl: string };
  return {
    endpoint,
    queueUrl,
    pid: child.pid,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
