// Starts the real services once for the integration tests: a Temporal dev server (the CLI
// binary), embedded PostgreSQL and the SQS emulator, in a child process running
// `scripts/services.ts --ephemeral` (temporary data, free ports). Their addresses go to a
// file whose path the tests read from TEST_SERVICES_FILE.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.join(__dirname, '..', '..');

export default async function globalSetup(): Promise<void> {
  // The AWS SDK's ten-line Node version warning, once per test process, says nothing new (lib/platform/log.ts).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const readyFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'login-ingest-test-')), 'services.json');
  // The tests always run on their own services, whatever the shell points at.
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: path.join(root, '.data') };
  for (const name of ['TEMPORAL_ADDRESS', 'DATABASE_URL', 'SQS_QUEUE_URL', 'AWS_ENDPOINT_URL_SQS']) delete env[name];
  const child = spawn(
    process.execPath,
    ['-r', 'ts-node/register', path.join(root, 'scripts', 'services.ts'), '--ephemeral', '--ready-file', readyFile],
    {
      cwd: root,
      env,
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const deadline = Date.now() + 5 * 60_000; // the first run may install the Temporal CLI
  while (!fs.existsSync(readyFile)) {
    const code = await Promise.race([exited, new Promise((r) => setTimeout(r, 200, 'waiting'))]);
    if (code !== 'waiting') throw new Error(`The test services exited early (code ${String(code)}); see the output above.`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('The test services did not start within 5 minutes.');
    }
  }
  process.env.TEST_SERVICES_FILE = readyFile;
  (globalThis as Record<string, unknown>).__testServices = child;
}
