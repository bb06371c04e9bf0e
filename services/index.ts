// The embedded default: start whichever of Temporal, PostgreSQL and SQS the environment
// does not point at, and publish their addresses in <DATA_DIR>/services.json, where
// worker.ts and client.ts find them (lib/platform/config.ts). Persistent mode keeps Temporal's
// SQLite file and PostgreSQL's data in DATA_DIR; ephemeral mode (tests) keeps nothing
// and takes free ports.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { migrate } from '../lib/platform/migrate';
import { SEARCH_ATTRIBUTE_ARGS } from '../lib/contract/run-attributes';
import type { Config } from '../lib/platform/config';
import { readEmbeddedServices, servicesFile, type EmbeddedServices } from '../lib/platform/embedded-services';
import { startEmbeddedPostgres } from './postgres';
import { startEmbeddedSqs, startSqsProcess } from './sqs';
import { freePort } from './ports';
import { findOrInstallTemporalCli } from './temporal-cli';
import { startTemporalDevServer } from './temporal-dev-server';

export const QUEUE_NAME = 'login-queue';

export interface RunningServices extends EmbeddedServices {
  /** What was started here (the rest came from the environment). */
  started: string[];
  /** The SQS emulator's own process, when it runs in one (opts.sqsProcess). */
  sqsPid?: number;
  /** The embedded PostgreSQL's superuser, for ephemeral (test) services only: never written to services.json. */
  adminDatabaseUrl?: string;
  stop: () => Promise<void>;
}

export async function startServices(
  config: Config,
  opts: {
    ephemeral?: boolean;
    log?: (msg: string) => void;
    /** The SQS emulator in a process of its own. */ sqsProcess?: boolean;
  } = {},
): Promise<RunningServices> {
  const log = opts.log ?? console.log;
  const { fromEnv } = config.embedded;
  const ephemeral = opts.ephemeral ?? false;
  const dataDir = path.resolve(config.dataDir);
  const other = readEmbeddedServices(dataDir);
  if (other && !ephemeral) {
    throw new Error(
      `The embedded services are already running (pid ${other.pid}, ${servicesFile(dataDir)}). Use those, or stop them first.`,
    );
  }
  const scratch = ephemeral ? fs.mkdtempSync(path.join(os.tmpdir(), 'login-ingest-')) : dataDir;
  fs.mkdirSync(scratch, { recursive: true });
  // Run as root, PostgreSQL runs as the `postgres` user, which must be able to enter this folder.
  if (ephemeral) fs.chmodSync(scratch, 0o755);
  const port = async (fixed: number) => (ephemeral ? freePort() : fixed);

  const stops: (() => Promise<void>)[] = [];
  const started: string[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    if (!ephemeral) fs.rmSync(servicesFile(dataDir), { force: true });
    else fs.rmSync(scratch, { recursive: true, force: true });
  };

  try {
    let temporalAddress = config.temporal.address;
    let temporalUiUrl: string | null = null;
    if (!fromEnv.temporal) {
      const cliPath = await findOrInstallTemporalCli({
        configuredPath: config.embedded.temporalCliPath,
        installDir: path.join(path.resolve(config.dataDir), 'bin'),
        log,
      });
      const server = await startTemporalDevServer({
        cliPath,
        port: await port(config.embedded.temporalPort),
        uiPort: ephemeral ? null : config.embedded.uiPort,
        dbFilename: ephemeral ? undefined : path.join(scratch, 'temporal.sqlite'),
        namespace: config.temporal.namespace,
        logFile: path.join(scratch, 'temporal.log'),
        extraArgs: [
          // The ingest's counts as search attributes, registered at start (lib/contract/run-attributes.ts).
          ...SEARCH_ATTRIBUTE_ARGS.flatMap((a) => ['--search-attribute', a]),
          ...(config.embedded.uiCodecEndpoint ? ['--ui-codec-endpoint', config.embedded.uiCodecEndpoint] : []),
        ],
      });
      stops.push(() => server.stop());
      started.push('Temporal dev server');
      temporalAddress = server.address;
      temporalUiUrl = server.uiUrl;
    }

    let databaseUrl = config.databaseUrl;
    let ownerDatabaseUrl = config.databaseOwnerUrl;
    let recoveryDatabaseUrl = config.recoveryDatabaseUrl;
    let operatorDatabaseUrl = config.operatorDatabaseUrl;
    let adminDatabaseUrl: string | undefined;
    if (!fromEnv.database) {
      const pg = await startEmbeddedPostgres({
        dir: path.join(scratch, 'postgres'),
        port: await port(config.embedded.postgresPort),
        persistent: !ephemeral,
        log,
      });
      stops.push(pg.stop);
      started.push('PostgreSQL (embedded)');
      databaseUrl = pg.databaseUrl;
      ownerDatabaseUrl = pg.ownerDatabaseUrl;
      recoveryDatabaseUrl = pg.recoveryDatabaseUrl;
      operatorDatabaseUrl = pg.operatorDatabaseUrl;
      if (ephemeral) adminDatabaseUrl = pg.adminDatabaseUrl;
      // As the owner: the application role can neither create nor alter tables.
      await migrate(ownerDatabaseUrl, log);
    }

    let sqsQueueUrl = config.sqs.queueUrl;
    let sqsEndpoint = config.sqs.endpoint ?? '';
    let sqsPid: number | undefined;
    if (!fromEnv.sqs) {
      const sqsPort = await port(config.embedded.sqsPort);
      const sqs = opts.sqsProcess
        ? await startSqsProcess({ port: sqsPort, region: config.sqs.region })
        : await startEmbeddedSqs({ port: sqsPort, queueName: QUEUE_NAME, region: config.sqs.region });
      stops.push(sqs.stop);
      started.push(`SQS emulator (fauxqs, in memory${opts.sqsProcess ? `, process ${sqs.pid}` : ''})`);
      sqsQueueUrl = sqs.queueUrl;
      sqsEndpoint = sqs.endpoint;
      sqsPid = sqs.pid;
    }

    const services: EmbeddedServices = {
      pid: process.pid,
      temporalAddress,
      temporalUiUrl,
      databaseUrl,
      ownerDatabaseUrl,
      recoveryDatabaseUrl,
      operatorDatabaseUrl,
      sqsQueueUrl,
      sqsEndpoint,
    };
    if (!ephemeral) fs.writeFileSync(servicesFile(dataDir), JSON.stringify(services, null, 2), { mode: 0o600 });
    return { ...services, started, sqsPid, adminDatabaseUrl, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
