// The workflow tests' Temporal: the time-skipping test server (installed by global-setup.ts),
// a worker on the real workflow code (workflows/index.ts, bundled as the worker bundles it)
// with plain functions as the activities, and the test server's client. Timers and timeouts
// skip ahead whenever the workflow waits on nothing but time.
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Runtime, DefaultLogger, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import { INGEST_SEARCH_ATTRIBUTES } from '../../lib/contract/run-attributes';
import { findOrInstallTestServer } from '../../services/temporal-test-server';

const root = path.join(__dirname, '..', '..');

let runtimeInstalled = false;
let bundle: Promise<WorkflowBundleWithSourceMap> | null = null;

/** Starts the test server; one retry, as the SDK gives it only 5 s to answer and a loaded machine can miss that. */
export async function startTestEnv(): Promise<TestWorkflowEnvironment> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  const serverPath = await findOrInstallTestServer({
    configuredPath: process.env.TEMPORAL_TEST_SERVER_PATH,
    installDir: path.join(root, '.data', 'bin'),
  });
  const start = () =>
    TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: serverPath } } });
  let env: TestWorkflowEnvironment;
  try {
    env = await start();
  } catch (err) {
    console.error(`The test server did not start (${(err as Error).message}); trying once more.`);
    env = await start();
  }
  // The ingest upserts its counts as search attributes, which must be registered first (as
  // the worker does at start against other servers; the test server cannot list them).
  const { IndexedValueType } = temporal.api.enums.v1;
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(
      INGEST_SEARCH_ATTRIBUTES.map((k) => [
        k.name,
        k.type === 'INT' ? IndexedValueType.INDEXED_VALUE_TYPE_INT : IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
      ]),
    ),
  });
  return env;
}

let queues = 0;

/**
 * Runs `fn` with a worker on a task queue of its own that serves the real workflows with
 * `activities`. The workflow bundle is built once per test file.
 */
export async function withWorker<T>(
  env: TestWorkflowEnvironment,
  activities: object,
  fn: (taskQueue: string) => Promise<T>,
  opts: { taskQueue?: string } = {},
): Promise<T> {
  bundle ??= bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), logger: new DefaultLogger('WARN') });
  const taskQueue = opts.taskQueue ?? `wf-test-${process.pid}-${++queues}`;
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: await bundle, activities });
  return worker.runUntil(fn(taskQueue));
}
