// Installs Temporal's time-skipping test server once before the workflow tests run
// (services/temporal-test-server.ts: Maven Central, pinned by sha256, cached in .data/bin),
// so that test files starting in parallel never race to install it.
import path from 'node:path';
import { findOrInstallTestServer } from '../../services/temporal-test-server';

export default async function globalSetup(): Promise<void> {
  process.env.TEMPORAL_TEST_SERVER_PATH = await findOrInstallTestServer({
    configuredPath: process.env.TEMPORAL_TEST_SERVER_PATH,
    installDir: path.join(__dirname, '..', '..', '.data', 'bin'),
    log: (msg) => console.error(msg),
  });
}
