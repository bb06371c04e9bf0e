import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig, regionFromQueueUrl, type Service } from '../../lib/platform/config';
import { redactUrl } from '../../lib/platform/env-schema';
import { servicesFile, type EmbeddedServices } from '../../lib/platform/embedded-services';
import { makeTempDir, removeTempDirs } from './helpers';

afterAll(removeTempDirs);

const AWS_QUEUE = 'https://sqs.eu-west-1.amazonaws.com/123456789012/logins';
const EMULATOR_QUEUE = 'http://127.0.0.1:9324/000000000000/logins';

/** Every service address given, and DATA_DIR an empty folder, so nothing is read from a running setup. */
function fullEnv(overrides: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    DATA_DIR: makeTempDir(),
    TEMPORAL_ADDRESS: 'temporal.internal:7233',
    DATABASE_URL: 'postgresql://ingest:secret@db.internal:5432/logins',
    SQS_QUEUE_URL: AWS_QUEUE,
    ...overrides,
  };
}

/** The ConfigError that loadConfig throws (fails the test if it does not throw one). */
function configError(env: NodeJS.ProcessEnv, needs?: Service[]): ConfigError {
  try {
    loadConfig(env, needs);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

function writeServicesFile(dataDir: string, pid: number): EmbeddedServices {
  const services: EmbeddedServices = {
    pid,
    temporalAddress: '127.0.0.1:17233',
    temporalUiUrl: 'http://127.0.0.1:18233',
    databaseUrl: 'postgres://postgres:pw@127.0.0.1:15432/postgres',
    sqsQueueUrl: 'http://127.0.0.1:19324/000000000000/login-events',
    sqsEndpoint: 'http://127.0.0.1:19324',
  };
  fs.writeFileSync(servicesFile(dataDir), JSON.stringify(services));
  return services;
}

describe('loadConfig: valid environments', () => {
  it('applies the documented defaults', () => {
    const env = fullEnv();
    delete env.DATA_DIR; // the default data folder is not read: every address is given
    const config = loadConfig(env);
    expect(config).toMatchObject({
      production: false,
      dataDir: '.data',
      temporal: { address: 'temporal.internal:7233', namespace: 'default', taskQueue: 'login-ingest', uiUrl: null },
      databaseUrl: 'postgresql://ingest:secret@db.internal:5432/logins',
      sqs: { queueUrl: AWS_QUEUE, region: 'eu-west-1', endpoint: undefined, embedded: false },
      keys: { keyringFile: undefined, encryptionKeys: undefined, activeKeyId: undefined, fingerprintKey: undefined },
      ingest: {
        workflowId: 'login-ingest',
        batchSize: 1000,
        concurrency: 1,
        maxMessages: undefined,
        waitTimeSeconds: 1,
        receiveConcurrency: 8,
        visibilityTimeoutSeconds: 30,
        sliceSeconds: 60,
        commitsInFlight: 2,
        slicesPerRun: 100,
      },
      logLevel: 'INFO',
      logFormat: 'text',
      worker: { maxConcurrentActivities: 32, metricsAddress: undefined, shutdownGraceSeconds: 20 },
      embedded: {
        fromEnv: { temporal: true, database: true, sqs: true },
        temporalPort: 7233,
        uiPort: 8233,
        postgresPort: 54329,
        sqsPort: 9324,
        temporalCliPath: undefined,
      },
    });
  });

  it('reads explicit values, converting numbers', () => {
    const config = loadConfig(
      fullEnv({
        NODE_ENV: 'production',
        TEMPORAL_NAMESPACE: 'prod',
        TEMPORAL_TASK_QUEUE: 'logins-q',
        INGEST_WORKFLOW_ID: 'wf-1',
        INGEST_BATCH_SIZE: '5000',
        INGEST_CONCURRENCY: '64',
        SQS_VISIBILITY_TIMEOUT_SECONDS: '5',
        WORKER_DRAIN_THREADS: '0',
        INGEST_MAX_MESSAGES: '5000',
        SQS_WAIT_TIME_SECONDS: '0',
        SQS_RECEIVE_CONCURRENCY: '50',
        WORKER_MAX_CONCURRENT_ACTIVITIES: '1',
        METRICS_ADDRESS: '0.0.0.0:9464',
        WORKER_SHUTDOWN_GRACE_SECONDS: '45',
        LOG_FORMAT: 'json',
        AWS_REGION: 'us-west-2',
        AWS_ENDPOINT_URL_SQS: 'https://sqs.example.internal',
        PII_KEYRING_FILE: '/run/secrets/keyring.json',
      }),
    );
    expect(config).toMatchObject({
      production: true,
      temporal: { namespace: 'prod', taskQueue: 'logins-q' },
      sqs: { region: 'us-west-2', endpoint: 'https://sqs.example.internal', embedded: false },
      keys: { keyringFile: '/run/secrets/keyring.json' },
      ingest: {
        workflowId: 'wf-1',
        batchSize: 5000,
        concurrency: 64,
        maxMessages: 5000,
        waitTimeSeconds: 0,
        receiveConcurrency: 50,
        visibilityTimeoutSeconds: 5,
      },
      logFormat: 'json',
      worker: { maxConcurrentActivities: 1, drainThreads: 0, metricsAddress: '0.0.0.0:9464', shutdownGraceSeconds: 45 },
    });
  });

  it('treats empty strings as unset', () => {
    const config = loadConfig(fullEnv({ INGEST_BATCH_SIZE: '', TEMPORAL_NAMESPACE: '', PII_KEYRING_FILE: '' }));
    expect(config.ingest.batchSize).toBe(1000);
    expect(config.temporal.namespace).toBe('default');
    expect(config.keys.keyringFile).toBeUndefined();
  });

  it('accepts an emulator queue URL when AWS_REGION is given', () => {
    const config = loadConfig(
      fullEnv({ SQS_QUEUE_URL: EMULATOR_QUEUE, AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:9324' }),
    );
    expect(config.sqs).toEqual({
      queueUrl: EMULATOR_QUEUE,
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9324',
      embedded: false,
    });
  });
});

describe('loadConfig: bad values', () => {
  it.each([
    ['INGEST_BATCH_SIZE', 'abc'],
    ['INGEST_BATCH_SIZE', '0'],
    ['INGEST_BATCH_SIZE', '5001'],
    ['INGEST_BATCH_SIZE', '1.5'],
    ['INGEST_BATCH_SIZE', '-1'],
    ['INGEST_BATCH_SIZE', ' 10'],
    ['INGEST_CONCURRENCY', '65'],
    ['SQS_VISIBILITY_TIMEOUT_SECONDS', '4'],
    ['INGEST_SLICE_SECONDS', '0'],
    ['WORKER_DRAIN_THREADS', '65'],
    ['INGEST_MAX_MESSAGES', '0'],
    ['SQS_WAIT_TIME_SECONDS', '21'],
    ['SQS_RECEIVE_CONCURRENCY', '51'],
    ['WORKER_MAX_CONCURRENT_ACTIVITIES', 'lots'],
    ['EMBEDDED_TEMPORAL_PORT', '65536'],
    ['TEMPORAL_UI_PORT', 'http'],
    ['EMBEDDED_POSTGRES_PORT', '0'],
    ['EMBEDDED_SQS_PORT', '1e3'],
    ['TEMPORAL_ADDRESS', 'nonsense'],
    ['TEMPORAL_ADDRESS', 'http://localhost:7233'],
    ['TEMPORAL_ADDRESS', 'localhost: 7233'],
    ['SQS_QUEUE_URL', 'notaurl'],
    ['SQS_QUEUE_URL', 'ftp://sqs.example.com/q'],
    ['AWS_ENDPOINT_URL_SQS', 'localhost:9324'],
    ['METRICS_ADDRESS', '9464'],
    ['METRICS_ADDRESS', 'http://0.0.0.0:9464'],
    ['LOG_FORMAT', 'yaml'],
    ['WORKER_SHUTDOWN_GRACE_SECONDS', '-5'],
  ])('%s=%j gives a ConfigError naming the variable and the value', (name, value) => {
    const err = configError(fullEnv({ [name]: value }));
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0].startsWith(`${name} `)).toBe(true);
    expect(err.problems[0]).toContain(JSON.stringify(value));
    expect(err.message).toContain(name);
    expect(err.name).toBe('ConfigError');
  });

  it.each([
    ['DATABASE_URL', 'mysql://app:S3cretPw@db/x'],
    ['DATABASE_URL', 'postgres//app:S3cretPw@db:5432/x'],
    ['DATABASE_URL', 'not a url S3cretPw'],
    ['DATABASE_OWNER_URL', 'S3cretPw@postgres://owner'],
    ['CODEC_SERVER_TOKEN', 'S3cretPw'],
    ['TEMPORAL_UI_CODEC_ENDPOINT', 'http//127.0.0.1:8234/S3cretPw'],
  ])('%s=%j gives a ConfigError naming the variable, never its value (it may hold a secret, wherever in it)', (name, value) => {
    const err = configError(fullEnv({ [name]: value }));
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0].startsWith(`${name} `)).toBe(true);
    expect(err.problems[0]).toContain('value is not shown');
    expect(err.message).not.toContain('S3cretPw');
  });

  it('refuses four-eyes off in production, and allows it elsewhere', () => {
    expect(configError(fullEnv({ NODE_ENV: 'production', PII_RECOVERY_REQUIRE_APPROVAL: 'false' })).message).toMatch(
      /PII_RECOVERY_REQUIRE_APPROVAL=false is refused with NODE_ENV=production/,
    );
    expect(loadConfig(fullEnv({ PII_RECOVERY_REQUIRE_APPROVAL: 'false' })).recovery.requireApproval).toBe(false);
    expect(loadConfig(fullEnv({ NODE_ENV: 'production' })).recovery.requireApproval).toBe(true);
  });

  it('redactUrl hides a password and a URL that does not parse', () => {
    expect(redactUrl('postgresql://app:S3cretPw@db:5432/x')).toBe('postgresql://app:***@db:5432/x');
    expect(redactUrl('postgres//app:S3cretPw@db')).not.toContain('S3cretPw');
  });

  it('explains what a good value looks like', () => {
    expect(configError(fullEnv({ INGEST_BATCH_SIZE: 'abc' })).message).toMatch(/INGEST_BATCH_SIZE must be a whole number/);
    expect(configError(fullEnv({ INGEST_BATCH_SIZE: '0' })).message).toMatch(/INGEST_BATCH_SIZE must be at least 1/);
    expect(configError(fullEnv({ INGEST_BATCH_SIZE: '5001' })).message).toMatch(/INGEST_BATCH_SIZE must be at most 5000/);
    expect(configError(fullEnv({ TEMPORAL_ADDRESS: 'nonsense' })).message).toMatch(/TEMPORAL_ADDRESS must be host:port/);
    expect(configError(fullEnv({ DATABASE_URL: 'mysql://x' })).message).toMatch(
      /DATABASE_URL must be a URL starting with postgres:\/\/ or postgresql:\/\//,
    );
    expect(configError(fullEnv({ SQS_QUEUE_URL: 'notaurl' })).message).toMatch(
      /SQS_QUEUE_URL must be a URL starting with http:\/\/ or https:\/\//,
    );
  });

  it('lists several bad values together', () => {
    const err = configError(
      fullEnv({ INGEST_BATCH_SIZE: 'abc', TEMPORAL_ADDRESS: 'nonsense', DATABASE_URL: 'mysql://x', SQS_QUEUE_URL: 'notaurl' }),
    );
    expect(err.problems.map((p) => p.split(' ')[0]).sort()).toEqual([
      'DATABASE_URL',
      'INGEST_BATCH_SIZE',
      'SQS_QUEUE_URL',
      'TEMPORAL_ADDRESS',
    ]);
    for (const name of ['DATABASE_URL', 'INGEST_BATCH_SIZE', 'SQS_QUEUE_URL', 'TEMPORAL_ADDRESS'])
      expect(err.message).toContain(name);
  });

  it('requires AWS_REGION when the queue URL does not name one', () => {
    const err = configError(fullEnv({ SQS_QUEUE_URL: EMULATOR_QUEUE }));
    expect(err.problems).toEqual([expect.stringContaining('AWS_REGION is not set')]);
  });
});

describe('loadConfig: service addresses', () => {
  it('names every missing address and how to start the embedded services', () => {
    const err = configError({ DATA_DIR: makeTempDir() });
    expect(err.problems).toHaveLength(3);
    for (const [problem, name] of err.problems.map((p, i) => [p, ['TEMPORAL_ADDRESS', 'DATABASE_URL', 'SQS_QUEUE_URL'][i]])) {
      expect(problem).toContain(`${name} is not set`);
      expect(problem).toContain('npm run services');
    }
  });

  it('requires only the services listed in `needs`', () => {
    const dataDir = makeTempDir();
    const config = loadConfig({ DATA_DIR: dataDir, DATABASE_URL: 'postgres://u@localhost/db' }, ['database']);
    expect(config.databaseUrl).toBe('postgres://u@localhost/db');
    expect(config.temporal.address).toBe('');
    expect(config.sqs.queueUrl).toBe('');

    const err = configError({ DATA_DIR: dataDir, TEMPORAL_ADDRESS: 'localhost:7233' }, ['temporal', 'database']);
    expect(err.problems).toEqual([expect.stringContaining('DATABASE_URL is not set')]);

    expect(loadConfig({ DATA_DIR: dataDir }, []).databaseUrl).toBe('');
  });

  it('takes missing addresses from running embedded services', () => {
    const dataDir = makeTempDir();
    const services = writeServicesFile(dataDir, process.pid); // a process that is certainly alive
    const config = loadConfig({ DATA_DIR: dataDir });
    expect(config.temporal).toMatchObject({ address: services.temporalAddress, uiUrl: services.temporalUiUrl });
    expect(config.databaseUrl).toBe(services.databaseUrl);
    expect(config.sqs).toEqual({
      queueUrl: services.sqsQueueUrl,
      region: 'us-east-1',
      endpoint: services.sqsEndpoint,
      embedded: true,
    });
    expect(config.embedded.fromEnv).toEqual({ temporal: false, database: false, sqs: false });
  });

  it('prefers addresses from the environment over the embedded services', () => {
    const dataDir = makeTempDir();
    const services = writeServicesFile(dataDir, process.pid);
    const config = loadConfig({ DATA_DIR: dataDir, DATABASE_URL: 'postgres://elsewhere/db' });
    expect(config.databaseUrl).toBe('postgres://elsewhere/db');
    expect(config.temporal.address).toBe(services.temporalAddress);
    expect(config.embedded.fromEnv).toEqual({ temporal: false, database: true, sqs: false });
  });

  it('ignores a services file left behind by a process that has exited', () => {
    const dataDir = makeTempDir();
    const exited = spawnSync(process.execPath, ['-e', '']);
    expect(exited.status).toBe(0);
    writeServicesFile(dataDir, exited.pid);
    expect(configError({ DATA_DIR: dataDir }).problems).toHaveLength(3);
  });

  it('ignores an unreadable services file', () => {
    const dataDir = makeTempDir();
    fs.writeFileSync(path.join(dataDir, 'services.json'), '{not json');
    expect(configError({ DATA_DIR: dataDir }).problems).toHaveLength(3);
  });
});

describe('regionFromQueueUrl', () => {
  it.each([
    ['https://sqs.eu-west-1.amazonaws.com/123456789012/q', 'eu-west-1'],
    ['https://sqs.us-east-1.amazonaws.com/123456789012/q', 'us-east-1'],
    ['https://sqs.ap-southeast-2.amazonaws.com/123456789012/q', 'ap-southeast-2'],
    ['https://sqs.us-gov-west-1.amazonaws.com/123456789012/q', 'us-gov-west-1'],
  ])('reads the region of %s', (url, region) => {
    expect(regionFromQueueUrl(url)).toBe(region);
  });

  it.each([
    'http://127.0.0.1:9324/000000000000/logins',
    'http://localhost:4566/000000000000/logins',
    'http://sqs.localhost.localstack.cloud:4566/000000000000/logins',
    'https://example.com/sqs.eu-west-1.amazonaws.com/q',
    'https://sqs.eu-west-1.example.com/123456789012/q',
  ])('returns null for the non-AWS URL %s', (url) => {
    expect(regionFromQueueUrl(url)).toBeNull();
  });
});
