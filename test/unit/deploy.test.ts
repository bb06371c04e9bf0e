// The deployment files, read against their schemas, since no Docker engine or cluster runs
// here: docker-compose.yml against the Compose Specification's JSON schema (vendored in
// test/schemas/, see its README), every manifest under deploy/k8s/ against the Kubernetes
// and KEDA models of kubernetes-models / @kubernetes-models/keda; then the properties this
// deployment depends on (health checks, codec wiring, graceful shutdown). Each validator is
// also shown a broken document, so a validator that accepts anything fails the test.
import fs from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import { parseAllDocuments, parseDocument } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { loadConfig } from '../../lib/platform/config';
import { ConfigMap, Service, ServiceAccount } from 'kubernetes-models/v1';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';

const root = path.join(__dirname, '..', '..');
const k8sDir = path.join(root, 'deploy', 'k8s');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;
const readYaml = (file: string): Doc => {
  const doc = parseDocument(fs.readFileSync(file, 'utf8'), { merge: true });
  if (doc.errors.length) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
  return doc.toJS({ maxAliasCount: 1000 });
};

describe('docker-compose.yml', () => {
  const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
  // The schema names draft-07 by an https URL ajv does not list; ajv's default draft is draft-07.
  const { $schema: _draft, ...schema } = JSON.parse(
    fs.readFileSync(path.join(root, 'test', 'schemas', 'compose-spec.json'), 'utf8'),
  );
  const validate = ajv.compile(schema);
  const compose = readYaml(path.join(root, 'docker-compose.yml'));

  it('is valid against the Compose Specification schema', () => {
    const ok = validate(compose);
    expect(ok ? [] : validate.errors).toEqual([]);
  });

  it('the schema refuses what compose would refuse (so the check above can fail)', () => {
    expect(validate({ services: { worker: { image: 'x', healthcheck: { tets: ['CMD', 'true'] } } } })).toBe(false);
    expect(validate({ services: { worker: { image: 'x', depends_on: { migrate: { condition: 'eventually' } } } } })).toBe(false);
    expect(validate({ services: { worker: { imagee: 'x' } } })).toBe(false);
  });

  it('runs the codec server, wires the UI to it, keeps keys and operator files in volumes, and uses no auto-setup', () => {
    const s = compose.services;
    expect(Object.values<Doc>(s).map((x) => x.image ?? '')).not.toContainEqual(expect.stringContaining('auto-setup'));
    expect(s.temporal.image).toMatch(/^temporalio\/server:/);
    expect(s['temporal-schema'].image).toMatch(/^temporalio\/admin-tools:/);
    expect(s['codec-server'].command).toEqual(['node', 'dist/client.js', 'codec-server', '--host', '0.0.0.0']);
    expect(s['temporal-ui'].environment.TEMPORAL_CODEC_ENDPOINT).toMatch(/^http:\/\/localhost:8234\/\$\{CODEC_SERVER_TOKEN:\?/);
    expect(s.client.volumes.map((v: Doc) => v.target).sort()).toEqual(['/data', '/keys']);
    expect(compose.volumes).toHaveProperty('operator-data');
    for (const name of ['postgres', 'temporal-postgresql', 'temporal', 'temporal-ui', 'localstack', 'codec-server', 'worker']) {
      expect([name, Array.isArray(s[name].healthcheck?.test)]).toEqual([name, true]);
    }
    expect(s.worker.healthcheck.test.join(' ')).toContain('http://127.0.0.1:9464/readyz');
    expect(s.worker.environment.METRICS_ADDRESS).toBe('0.0.0.0:9464');
    // Graceful: compose waits longer than the worker gives its activities.
    expect(Number(s.worker.environment.WORKER_SHUTDOWN_GRACE_SECONDS)).toBeLessThan(parseInt(s.worker.stop_grace_period, 10));
    // The one-shot setup scripts exist and are executable.
    for (const script of ['setup-postgres.sh', 'create-namespace.sh']) {
      expect(fs.statSync(path.join(root, 'docker', 'temporal', script)).mode & 0o111).toBeTruthy();
    }
    // The audit anchors go to LocalStack's S3, into a bucket its init hook creates with Object Lock.
    const env = { ...s.worker.environment, PII_KEK: 'local', LOG_FORMAT: 'text', DATA_DIR: '/tmp/unused' };
    expect(loadConfig(env, []).auditAnchor).toMatchObject({
      kind: 's3',
      bucket: 'login-ingest-audit-anchors',
      endpoint: 'http://localstack:4566',
    });
    expect(s.localstack.environment.SERVICES.split(',').sort()).toEqual(['kms', 's3', 'sqs']);
    const hook = path.join(root, 'docker', 'localstack', 'init-audit-bucket.sh');
    expect(fs.statSync(hook).mode & 0o111).toBeTruthy();
    expect(fs.readFileSync(hook, 'utf8')).toContain('--object-lock-enabled-for-bucket');
  });

  it('registers the same search attributes the workflow upserts', () => {
    const { SEARCH_ATTRIBUTE_ARGS } = jest.requireActual<typeof import('../../lib/contract/run-attributes')>(
      '../../lib/contract/run-attributes',
    );
    const script = fs.readFileSync(path.join(root, 'docker', 'temporal', 'create-namespace.sh'), 'utf8');
    const listed = /for pair in ([^;]+);/.exec(script)![1].trim().split(/\s+/);
    expect(listed).toEqual(SEARCH_ATTRIBUTE_ARGS);
  });
});

describe('deploy/k8s', () => {
  const MODELS: Record<string, new (data: Doc) => { validate(): void }> = {
    'apps/v1/Deployment': Deployment,
    'batch/v1/Job': Job,
    'v1/ConfigMap': ConfigMap,
    'v1/Service': Service,
    'v1/ServiceAccount': ServiceAccount,
    'keda.sh/v1alpha1/ScaledObject': ScaledObject,
    'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication,
  };
  const files = fs.readdirSync(k8sDir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  const docs: { file: string; doc: Doc }[] = files.flatMap((file) =>
    parseAllDocuments(fs.readFileSync(path.join(k8sDir, file), 'utf8')).map((d) => {
      if (d.errors.length) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
      return { file, doc: d.toJS() };
    }),
  );
  const find = (kind: string, name: string) => docs.find((d) => d.doc.kind === kind && d.doc.metadata.name === name)!.doc;

  it('every manifest is a known kind and valid against its schema', () => {
    expect(docs.length).toBeGreaterThanOrEqual(8);
    for (const { file, doc } of docs) {
      const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
      expect([file, doc.kind, Model !== undefined]).toEqual([file, doc.kind, true]);
      expect(() => new Model(doc).validate()).not.toThrow();
    }
  });

  it('the validators refuse broken documents (so the check above can fail)', () => {
    const deployment = structuredClone(find('Deployment', 'login-ingest-worker'));
    deployment.spec.replicas = 'two';
    expect(() => new Deployment(deployment).validate()).toThrow(/replicas/);
    const scaled = structuredClone(find('ScaledObject', 'login-ingest-worker'));
    delete scaled.spec.scaleTargetRef;
    expect(() => new ScaledObject(scaled).validate()).toThrow(/scaleTargetRef/);
    const job = structuredClone(find('Job', 'login-ingest-schedule'));
    job.spec.template.spec.containers[0].ports = [{ containerPort: 'http' }];
    expect(() => new Job(job).validate()).toThrow(/containerPort/);
  });

  it('the ConfigMap chooses a KMS key and an S3 anchor bucket the configuration accepts; a job creates the anchor schedule', () => {
    const config = loadConfig({ ...find('ConfigMap', 'login-ingest-config').data, DATA_DIR: '/tmp/unused' }, []);
    expect(config.keys.kek).toMatchObject({ kind: 'aws-kms', region: 'eu-west-1' });
    expect(config.auditAnchor).toMatchObject({ kind: 's3', prefix: 'trail' });
    const commands = find('Job', 'login-ingest-schedule').spec.template.spec.containers.map((c: Doc) =>
      c.command.slice(2, 5).join(' '),
    );
    expect(commands).toContain('audit anchor --schedule');
    expect(find('ServiceAccount', 'login-ingest').metadata.annotations['eks.amazonaws.com/role-arn']).toMatch(/^arn:aws:iam::/);
  });

  it('kustomization lists every manifest', () => {
    expect(readYaml(path.join(k8sDir, 'kustomization.yaml')).resources.sort()).toEqual(files.sort());
  });

  it('the worker shuts down gracefully, exposes metrics, and is probed on the metrics server', () => {
    const config = find('ConfigMap', 'login-ingest-config').data;
    const pod = find('Deployment', 'login-ingest-worker').spec.template.spec;
    const [worker] = pod.containers;
    expect(Number(config.WORKER_SHUTDOWN_GRACE_SECONDS)).toBeLessThan(pod.terminationGracePeriodSeconds);
    const port = Number(config.METRICS_ADDRESS.split(':').pop());
    expect(worker.ports).toEqual([{ name: 'metrics', containerPort: port, protocol: 'TCP' }]);
    expect(worker.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(worker.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(worker.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
  });

  it('scales on queue depth and task-queue backlog, and commits no secret values', () => {
    const scaled = find('ScaledObject', 'login-ingest-worker').spec;
    expect(scaled.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'login-ingest-worker' });
    expect(scaled.triggers.map((t: Doc) => t.type).sort()).toEqual(['aws-sqs-queue', 'temporal']);
    const config = find('ConfigMap', 'login-ingest-config').data;
    expect(scaled.triggers.find((t: Doc) => t.type === 'temporal').metadata.taskQueue).toBe(config.TEMPORAL_TASK_QUEUE);
    expect(scaled.triggers.find((t: Doc) => t.type === 'aws-sqs-queue').metadata.queueURL).toBe(config.SQS_QUEUE_URL);
    expect(docs.filter((d) => d.doc.kind === 'Secret')).toEqual([]);
    expect(
      Object.keys(config).filter((k) => /DATABASE_URL|TOKEN|PASSWORD|SECRET|PII_MASTER_KEY$|PII_ENCRYPTION_KEYS/.test(k)),
    ).toEqual([]);
  });
});
