// lib/platform/: what every process stands on: this configuration, Prisma (`db`), the
// migrations (`migrate`), logs (`log`, `logging`), the Temporal connection (`temporal`,
// `failure-converter`, `search-attributes`) and the worker's HTTP endpoint
// (`metrics-server`). It may import the rest of lib/, never workflows/, activities/ or cli/
// (test/unit/layout.test.ts checks). Start reading here.
//
// This file: configuration, read from the environment and validated once, here. Everything
// else takes a `Config` (or a part of it) as an argument and never reads process.env itself.
// The defaults of names and ingest options come from lib/contract, their one home.
//
// Service addresses follow the ecosystem's own variable names. When one is not set, the
// value comes from the embedded services (`npm run services` or `npm run demo`), which
// write their addresses to `<DATA_DIR>/services.json` while they run (embedded-services.ts).
import os from 'node:os';
import path from 'node:path';
import { readEmbeddedServices } from './embedded-services';
import { describeIssue, envSchema } from './env-schema';
import { INGEST_LIMITS, type IngestOptions, type ResolvedIngestOptions } from '../contract/ingest-options';
import { recoveryTaskQueue } from '../contract/names';
import type { RecoveryPolicy } from '../contract/recovery';
import { KMS_KEK_PREFIX, parseKmsKeyId, type KmsKek } from '../pii/kms-key-id';

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(
      `Configuration error:\n${problems.map((p) => `  - ${p}`).join('\n')}\nSee .env.example and the README's "Configuration" section.`,
    );
    this.name = 'ConfigError';
  }
}

export interface Config {
  production: boolean;
  dataDir: string;
  logLevel: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  logFormat: 'text' | 'json';
  temporal: {
    address: string;
    namespace: string;
    taskQueue: string;
    /** Where the recovery activities (the only ones that decrypt PII) run: TEMPORAL_RECOVERY_TASK_QUEUE, default <taskQueue>-pii-recovery. */
    recoveryTaskQueue: string;
    uiUrl: string | null;
  };
  /** The payload codec's keys: never the PII data keys or the fingerprint key (lib/pii/keyring.ts loadCodecKeys). */
  codecKeys: { file?: string; keys?: string; activeKeyId?: string };
  /** The ingest worker's role (DATABASE_URL, login_ingest_app). */
  databaseUrl: string;
  /** The recovery worker's role (RECOVERY_DATABASE_URL, login_ingest_recovery); empty when neither set nor embedded. */
  recoveryDatabaseUrl: string;
  /** The operators' CLI role (OPERATOR_DATABASE_URL, login_ingest_operator): requests, approve, deny, audit verify. */
  operatorDatabaseUrl: string;
  /** The owner role that runs the migrations (DATABASE_OWNER_URL; default DATABASE_URL, or the embedded owner). */
  databaseOwnerUrl: string;
  sqs: { queueUrl: string; region: string; endpoint?: string; embedded: boolean };
  keys: {
    keyringFile?: string;
    encryptionKeys?: string;
    activeKeyId?: string;
    fingerprintKey?: string;
    masterKey?: string;
    masterKeyFile?: string;
    /** The key-encryption key of the key file (PII_KEK): the local master key (default) or a KMS key; absent means local. */
    kek?: { kind: 'local' } | KmsKek;
    /** AWS_REGION and AWS_ENDPOINT_URL_KMS, for a KMS key named by a key file rather than by PII_KEK (`keys rewrap`). */
    awsRegion?: string;
    kmsEndpoint?: string;
  };
  /**
   * Where `audit anchor` writes the audit trail's head (AUDIT_ANCHOR): an S3 bucket with
   * Object Lock (each anchor a new object, locked in COMPLIANCE mode for retentionDays), or a
   * local append-only file (default <DATA_DIR>/audit-anchors.jsonl).
   */
  auditAnchor:
    | { kind: 'file'; path: string }
    | { kind: 's3'; bucket: string; prefix: string; region: string; endpoint?: string; retentionDays: number };
  /** The recovery activities' policy (lib/contract/recovery.ts has the fields' meanings), and where the operators are registered. */
  recovery: RecoveryPolicy & {
    /** Operator registry (JSON Lines); default <DATA_DIR>/operators.jsonl. */
    operatorsFile: string;
  };
  codecServer: { token?: string; port: number; corsOrigins: string[] };
  /** The ingest's workflow ID and options (lib/contract/ingest-options.ts has their ranges and meanings). */
  ingest: { workflowId: string } & ResolvedIngestOptions;
  worker: {
    maxConcurrentActivities: number;
    /** Threads each worker process drains with (0: on its main thread). */
    drainThreads: number;
    /** The worker's Prometheus, readiness and health endpoint (lib/platform/metrics-server.ts); off when unset. */
    metricsAddress?: string;
    /** On SIGTERM, activities get this long to finish before they are cancelled (keep it below Kubernetes' terminationGracePeriodSeconds). */
    shutdownGraceSeconds: number;
  };
  /** For the embedded services (services/): which addresses the environment gave, and the ports to use for the rest. */
  embedded: {
    fromEnv: { temporal: boolean; database: boolean; sqs: boolean };
    temporalPort: number;
    uiPort: number;
    postgresPort: number;
    sqsPort: number;
    temporalCliPath?: string;
    /** Passed to the dev server's Web UI as its codec server (`--ui-codec-endpoint`). */
    uiCodecEndpoint?: string;
  };
}

export type Service = 'temporal' | 'database' | 'sqs';
const ALL_SERVICES: Service[] = ['temporal', 'database', 'sqs'];

/**
 * Reads and validates the whole configuration, or throws a ConfigError naming every
 * problem. `needs` lists the services the caller uses: a missing address of another one is
 * not an error (its field is then the empty string), so `npm run db:migrate` needs no queue.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, needs: Service[] = ALL_SERVICES): Config {
  // Empty strings count as unset, as they do for most tools reading .env files.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => describeIssue(i, env)));
  const e = parsed.data;

  const problems: string[] = [];
  const needsEmbedded =
    (needs.includes('temporal') && !e.TEMPORAL_ADDRESS) ||
    (needs.includes('database') && !e.DATABASE_URL) ||
    (needs.includes('sqs') && !e.SQS_QUEUE_URL);
  const embedded = needsEmbedded ? readEmbeddedServices(e.DATA_DIR) : null;
  const missing = (name: string) =>
    `${name} is not set and the embedded services are not running: set ${name}, or start the embedded services with \`npm run services\` (or \`npm run demo\`) in another terminal`;

  const temporalAddress = e.TEMPORAL_ADDRESS ?? embedded?.temporalAddress;
  if (!temporalAddress && needs.includes('temporal')) problems.push(missing('TEMPORAL_ADDRESS'));
  const databaseUrl = e.DATABASE_URL ?? embedded?.databaseUrl;
  if (!databaseUrl && needs.includes('database')) problems.push(missing('DATABASE_URL'));
  const queueUrl = e.SQS_QUEUE_URL ?? embedded?.sqsQueueUrl;
  if (!queueUrl && needs.includes('sqs')) problems.push(missing('SQS_QUEUE_URL'));
  const sqsFromEmbedded = !e.SQS_QUEUE_URL;
  if (e.SQS_QUEUE_URL && !e.AWS_REGION && !regionFromQueueUrl(e.SQS_QUEUE_URL)) {
    problems.push('AWS_REGION is not set and cannot be read from SQS_QUEUE_URL: set AWS_REGION, e.g. us-east-1');
  }
  if (e.NODE_ENV === 'production' && e.PII_RECOVERY_REQUIRE_APPROVAL === 'false') {
    problems.push(
      "PII_RECOVERY_REQUIRE_APPROVAL=false is refused with NODE_ENV=production: every PII recovery needs a second operator's signed approval there (remove the variable)",
    );
  }
  let kek: NonNullable<Config['keys']['kek']> = { kind: 'local' };
  if (e.PII_KEK.startsWith(KMS_KEK_PREFIX)) {
    const parsed = parseKmsKeyId(e.PII_KEK.slice(KMS_KEK_PREFIX.length), e.AWS_REGION);
    if (typeof parsed === 'string') problems.push(parsed);
    else kek = { kind: 'aws-kms', ...parsed, endpoint: e.AWS_ENDPOINT_URL_KMS };
  }
  if (problems.length) throw new ConfigError(problems);

  return {
    production: e.NODE_ENV === 'production',
    dataDir: e.DATA_DIR,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    temporal: {
      address: temporalAddress ?? '',
      namespace: e.TEMPORAL_NAMESPACE,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      recoveryTaskQueue: e.TEMPORAL_RECOVERY_TASK_QUEUE ?? recoveryTaskQueue(e.TEMPORAL_TASK_QUEUE),
      uiUrl: e.TEMPORAL_ADDRESS ? null : (embedded?.temporalUiUrl ?? null),
    },
    databaseUrl: databaseUrl ?? '',
    // The writer roles come from the same place as DATABASE_URL: never mixed with the embedded ones.
    recoveryDatabaseUrl: e.RECOVERY_DATABASE_URL ?? (e.DATABASE_URL ? '' : (embedded?.recoveryDatabaseUrl ?? '')),
    operatorDatabaseUrl: e.OPERATOR_DATABASE_URL ?? (e.DATABASE_URL ? '' : (embedded?.operatorDatabaseUrl ?? '')),
    databaseOwnerUrl: e.DATABASE_OWNER_URL ?? (e.DATABASE_URL ? e.DATABASE_URL : embedded?.ownerDatabaseUrl) ?? databaseUrl ?? '',
    sqs: {
      queueUrl: queueUrl ?? '',
      region: e.AWS_REGION ?? (queueUrl ? regionFromQueueUrl(queueUrl) : null) ?? 'us-east-1',
      endpoint: sqsFromEmbedded && embedded ? embedded.sqsEndpoint : e.AWS_ENDPOINT_URL_SQS,
      embedded: sqsFromEmbedded && !!embedded,
    },
    codecKeys: { file: e.TEMPORAL_CODEC_KEY_FILE, keys: e.TEMPORAL_CODEC_KEYS, activeKeyId: e.TEMPORAL_CODEC_ACTIVE_KEY_ID },
    keys: {
      keyringFile: e.PII_KEYRING_FILE,
      encryptionKeys: e.PII_ENCRYPTION_KEYS,
      activeKeyId: e.PII_ACTIVE_KEY_ID,
      fingerprintKey: e.PII_FINGERPRINT_KEY,
      masterKey: e.PII_MASTER_KEY,
      masterKeyFile: e.PII_MASTER_KEY_FILE,
      kek,
      awsRegion: e.AWS_REGION,
      kmsEndpoint: e.AWS_ENDPOINT_URL_KMS,
    },
    auditAnchor: auditAnchorConfig(
      e.AUDIT_ANCHOR,
      e.DATA_DIR,
      e.AWS_REGION,
      e.AWS_ENDPOINT_URL_S3,
      e.AUDIT_ANCHOR_RETENTION_DAYS,
    ),
    recovery: {
      operatorsFile: e.PII_OPERATORS_FILE ?? path.join(e.DATA_DIR, 'operators.jsonl'),
      maxRecords: e.PII_RECOVERY_MAX_RECORDS,
      requireApproval: e.PII_RECOVERY_REQUIRE_APPROVAL === 'true',
      approvalTimeoutSeconds: e.PII_RECOVERY_APPROVAL_TIMEOUT_SECONDS,
      signatureMaxAgeSeconds: e.PII_SIGNATURE_MAX_AGE_SECONDS,
    },
    codecServer: {
      token: e.CODEC_SERVER_TOKEN,
      port: e.CODEC_SERVER_PORT,
      corsOrigins: e.CODEC_CORS_ORIGINS.split(',')
        .map((o) => o.trim())
        .filter(Boolean),
    },
    ingest: {
      workflowId: e.INGEST_WORKFLOW_ID,
      ...(Object.fromEntries(
        Object.entries(INGEST_LIMITS).map(([name, l]) => [name, (e as Record<string, unknown>)[l.env]]),
      ) as IngestOptions as ResolvedIngestOptions),
    },
    worker: {
      maxConcurrentActivities: e.WORKER_MAX_CONCURRENT_ACTIVITIES,
      // One drain thread per core but one, at least 1 and at most 4: the main thread, V8's own
      // threads (JIT, GC) and, on one host, PostgreSQL and SQS need a core too. Measured on 2
      // cores, 1 thread drained as fast as 2 with 14% less CPU and 52 MiB less memory (README: Performance).
      drainThreads: e.WORKER_DRAIN_THREADS ?? Math.max(1, Math.min(4, os.availableParallelism() - 1)),
      metricsAddress: e.METRICS_ADDRESS,
      shutdownGraceSeconds: e.WORKER_SHUTDOWN_GRACE_SECONDS,
    },
    embedded: {
      fromEnv: { temporal: !!e.TEMPORAL_ADDRESS, database: !!e.DATABASE_URL, sqs: !!e.SQS_QUEUE_URL },
      temporalPort: e.EMBEDDED_TEMPORAL_PORT,
      uiPort: e.TEMPORAL_UI_PORT,
      postgresPort: e.EMBEDDED_POSTGRES_PORT,
      sqsPort: e.EMBEDDED_SQS_PORT,
      temporalCliPath: e.TEMPORAL_CLI_PATH,
      uiCodecEndpoint: e.TEMPORAL_UI_CODEC_ENDPOINT,
    },
  };
}

function auditAnchorConfig(
  value: string | undefined,
  dataDir: string,
  region: string | undefined,
  endpoint: string | undefined,
  retentionDays: number,
): Config['auditAnchor'] {
  if (!value) return { kind: 'file', path: path.join(dataDir, 'audit-anchors.jsonl') };
  if (value.startsWith('file:')) return { kind: 'file', path: value.slice('file:'.length) };
  const [bucket, ...rest] = value.slice('s3://'.length).split('/');
  const prefix = rest.join('/').replace(/^\/+|\/+$/g, '');
  return { kind: 's3', bucket, prefix, region: region ?? 'us-east-1', endpoint, retentionDays };
}

/** `https://sqs.eu-west-1.amazonaws.com/123/q` → `eu-west-1`; null for emulator URLs. */
export function regionFromQueueUrl(queueUrl: string): string | null {
  const match = /^sqs[.-]([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com/.exec(new URL(queueUrl).hostname);
  return match ? match[1] : null;
}
