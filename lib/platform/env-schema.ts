// The environment's variables, in one zod schema: their names, types, ranges and defaults
// (the ingest options' from lib/contract/ingest-options.ts), and which of them may hold a
// secret, so that an error names a variable without ever showing a secret value.
// lib/platform/config.ts reads the environment through it, once.
import { z } from 'zod';
import { INGEST_LIMITS } from '../contract/ingest-options';
import { DEFAULT_INGEST_WORKFLOW_ID, DEFAULT_TASK_QUEUE } from '../contract/names';

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, { message: 'must be a whole number' })
    .transform(Number)
    .pipe(
      z
        .number()
        .min(min, { message: `must be at least ${min}` })
        .max(max, { message: `must be at most ${max}` }),
    );

const url = (protocols: string[]) =>
  z.string().refine(
    (v) => {
      try {
        return protocols.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
  );

/** INGEST_BATCH_SIZE and the other ingest options, with the ranges and defaults of lib/contract/ingest-options.ts. */
function ingestEnv() {
  return Object.fromEntries(
    Object.values(INGEST_LIMITS).map((l) => [
      l.env,
      l.default === undefined ? int(l.min, l.max).optional() : int(l.min, l.max).default(l.default),
    ]),
  ) as Record<string, z.ZodType<number | undefined>>;
}

export const envSchema = z.object({
  NODE_ENV: z.string().optional(),
  DATA_DIR: z.string().min(1).default('.data'),
  LOG_LEVEL: z.enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
  LOG_FORMAT: z.enum(['text', 'json']).default('text'),
  METRICS_ADDRESS: z
    .string()
    .regex(/^(\[[0-9a-fA-F:]+\]|[^\s:/[\]]*):\d{1,5}$/, { message: 'must be host:port, e.g. 0.0.0.0:9464' })
    .optional(),
  WORKER_SHUTDOWN_GRACE_SECONDS: int(0, 3600).default(20),

  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[^\s:/]+:\d+$/, { message: 'must be host:port, e.g. localhost:7233' })
    .optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default(DEFAULT_TASK_QUEUE),
  TEMPORAL_RECOVERY_TASK_QUEUE: z.string().min(1).optional(),
  TEMPORAL_CODEC_KEY_FILE: z.string().min(1).optional(),
  TEMPORAL_CODEC_KEYS: z.string().min(1).optional(),
  TEMPORAL_CODEC_ACTIVE_KEY_ID: z.string().min(1).optional(),
  TEMPORAL_CLI_PATH: z.string().min(1).optional(),

  DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
  DATABASE_OWNER_URL: url(['postgres:', 'postgresql:']).optional(),
  RECOVERY_DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
  OPERATOR_DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),

  SQS_QUEUE_URL: url(['http:', 'https:']).optional(),
  AWS_REGION: z.string().min(1).optional(),
  AWS_ENDPOINT_URL_SQS: url(['http:', 'https:']).optional(),
  AWS_ENDPOINT_URL_KMS: url(['http:', 'https:']).optional(),
  AWS_ENDPOINT_URL_S3: url(['http:', 'https:']).optional(),

  PII_KEYRING_FILE: z.string().min(1).optional(),
  PII_ENCRYPTION_KEYS: z.string().min(1).optional(),
  PII_ACTIVE_KEY_ID: z.string().min(1).optional(),
  PII_FINGERPRINT_KEY: z.string().min(1).optional(),
  PII_MASTER_KEY: z.string().min(1).optional(),
  PII_MASTER_KEY_FILE: z.string().min(1).optional(),
  PII_KEK: z
    .string()
    .regex(/^(local|aws-kms:.+)$/, { message: 'must be local or aws-kms:<key ARN, alias ARN, alias/name or key ID>' })
    .default('local'),

  AUDIT_ANCHOR: z
    .string()
    .regex(/^(s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?|file:.+)$/, {
      message: 'must be s3://<bucket>[/<prefix>] or file:<path>',
    })
    .optional(),
  AUDIT_ANCHOR_RETENTION_DAYS: int(1, 36500).default(400),

  PII_OPERATORS_FILE: z.string().min(1).optional(),
  PII_RECOVERY_MAX_RECORDS: int(1, 10_000).default(20),
  PII_RECOVERY_REQUIRE_APPROVAL: z.enum(['true', 'false'], { message: 'must be true or false' }).default('true'),
  PII_RECOVERY_APPROVAL_TIMEOUT_SECONDS: int(1, 30 * 24 * 3600).default(24 * 3600),
  PII_SIGNATURE_MAX_AGE_SECONDS: int(10, 24 * 3600).default(300),

  CODEC_SERVER_TOKEN: z
    .string()
    .min(32, { message: 'must be at least 32 characters (make one with `npx ts-node client.ts codec-server --new-token`)' })
    .optional(),
  CODEC_SERVER_PORT: int(0, 65535).default(8234),
  CODEC_CORS_ORIGINS: z.string().min(1).default('http://localhost:8233,http://127.0.0.1:8233'),

  INGEST_WORKFLOW_ID: z.string().min(1).default(DEFAULT_INGEST_WORKFLOW_ID),
  ...ingestEnv(),
  WORKER_MAX_CONCURRENT_ACTIVITIES: int(1, 1000).default(32),
  WORKER_DRAIN_THREADS: int(0, 64).optional(),

  EMBEDDED_TEMPORAL_PORT: int(1, 65535).default(7233),
  TEMPORAL_UI_PORT: int(1, 65535).default(8233),
  EMBEDDED_POSTGRES_PORT: int(1, 65535).default(54329),
  EMBEDDED_SQS_PORT: int(1, 65535).default(9324),
  TEMPORAL_UI_CODEC_ENDPOINT: url(['http:', 'https:']).optional(),
});

/**
 * Variables whose value may hold a secret (a password in a URL, a token, a key) wherever
 * in the value it sits: an error names them but never shows their value.
 */
export const SECRET_VARIABLE = /(DATABASE|_URL$|TOKEN|KEY|SECRET|PASSWORD|CODEC_ENDPOINT)/;
const NOT_SECRET = new Set([
  'SQS_QUEUE_URL',
  'AWS_ENDPOINT_URL_SQS',
  'AWS_ENDPOINT_URL_KMS',
  'AWS_ENDPOINT_URL_S3',
  'TEMPORAL_CODEC_ACTIVE_KEY_ID',
  'PII_ACTIVE_KEY_ID',
  'PII_KEYRING_FILE',
  'PII_MASTER_KEY_FILE',
  'TEMPORAL_CODEC_KEY_FILE',
]);
export const isSecretVariable = (name: string) => SECRET_VARIABLE.test(name) && !NOT_SECRET.has(name);

/** One problem of the environment, in words; a variable that may hold a secret is named, its value never shown. */
export function describeIssue(issue: z.core.$ZodIssue, env: NodeJS.ProcessEnv): string {
  const name = String(issue.path[0]);
  const value = env[name];
  if (value === undefined) return `${name} ${issue.message}`;
  if (isSecretVariable(name)) return `${name} ${issue.message} (its value is not shown: it may hold a secret)`;
  return `${name} ${issue.message} (got ${JSON.stringify(value)})`;
}

/** A URL as it may be logged: the password (and anything that fails to parse) hidden. */
export function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '(a URL that does not parse; not shown)';
  }
}
