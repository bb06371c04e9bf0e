// The services of a chaos run, its own and able to be struck: the Temporal dev server on an
// SQLite file and a fixed port (killed and restarted on both), embedded PostgreSQL on a
// persistent scratch directory (paused and resumed), and the SQS emulator in its own process.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../lib/platform/config';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../services/postgres';
import { startSqsProcess, type EmbeddedSqsHandle } from '../../services/sqs';
import { freePort } from '../../services/ports';
import { findOrInstallTemporalCli } from '../../services/temporal-cli';
import { startTemporalDevServer, type TemporalDevServer } from '../../services/temporal-dev-server';
import { ROOT } from '../harness';
import { sleep, type Log } from './common';

export interface ChaosServices {
  scratch: string;
  temporalAddress: string;
  pg: EmbeddedPostgresHandle;
  sqs: EmbeddedSqsHandle;
  /** SIGKILL the Temporal server, wait, start it again on the same SQLite file and port. */
  killTemporal(downMs: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startChaosServices(log: Log): Promise<ChaosServices> {
  // The emulator accepts any credentials; the SDK's default chain reads these.
  process.env.AWS_ACCESS_KEY_ID ??= 'chaos';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'chaos';
  const base = loadConfig({ ...process.env, LOG_LEVEL: 'WARN' }, []);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'login-ingest-chaos-'));
  fs.chmodSync(scratch, 0o755); // as root, PostgreSQL runs as the postgres user
  const stops: (() => Promise<void>)[] = [];
  try {
    const cliPath = await findOrInstallTemporalCli({
      configuredPath: base.embedded.temporalCliPath,
      installDir: path.join(path.resolve(ROOT, base.dataDir), 'bin'),
      log,
    });
    const port = await freePort();
    const temporalOpts = {
      cliPath,
      port,
      uiPort: null,
      dbFilename: path.join(scratch, 'temporal.sqlite'),
      namespace: base.temporal.namespace,
      logFile: path.join(scratch, 'temporal.log'),
    };
    let temporal: TemporalDevServer = await startTemporalDevServer(temporalOpts);
    stops.push(() => temporal.stop());
    const pg = await startEmbeddedPostgres({
      dir: path.join(scratch, 'postgres'),
      port: await freePort(),
      persistent: true,
      log,
    });
    stops.push(() => pg.stop());
    const sqs = await startSqsProcess({ port: await freePort(), region: base.sqs.region });
    stops.push(() => sqs.stop());
    return {
      scratch,
      temporalAddress: temporal.address,
      pg,
      sqs,
      async killTemporal(downMs) {
        process.kill(temporal.pid, 'SIGKILL');
        await temporal.stop();
        await sleep(downMs);
        temporal = await startTemporalDevServer(temporalOpts);
      },
      async stop() {
        for (const stop of stops.reverse()) await stop().catch(() => {});
        fs.rmSync(scratch, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    fs.rmSync(scratch, { recursive: true, force: true });
    throw err;
  }
}
