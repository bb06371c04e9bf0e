/**
 * Getting Temporal's time-skipping test server, for the workflow tests (test/workflows/).
 *
 * `TestWorkflowEnvironment.createTimeSkipping()` of @temporalio/testing downloads a native
 * build of the test server from Temporal's CDN, which CI cannot reach. The same server is
 * published on Maven Central as Java code (io.temporal:temporal-test-server, started as
 * `io.temporal.testserver.TestServer <port>`, which is exactly what the SDK runs: the port,
 * then any `extraArgs`). So this installs that jar and its runtime dependencies, each
 * pinned by URL and sha256 in temporal-test-server.manifest.json, into
 * `<installDir>/temporal-test-server-<VERSION>/`, and writes a small executable there that
 * starts it with the installed Java. Hand that path to the SDK:
 *
 *   TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path } } })
 *
 * Where the server comes from, in this order:
 *   1. TEMPORAL_TEST_SERVER_PATH (passed in as `configuredPath`): any test server
 *      executable, e.g. the native one from Temporal's download on a normal machine.
 *   2. One installed before (the executable is written last, so its presence means done).
 *   3. Install: download into a temporary directory next to the final one, check every
 *      file's sha256, then rename the directory into place (an interrupted or concurrent
 *      install never leaves a half-filled one behind).
 *
 * The SDK gives the server 5 seconds to answer, and a JVM on a loaded 2-core machine took
 * up to 4.4 s to start it (measured). The install therefore also records a class-data
 * sharing archive (`-XX:ArchiveClassesAtExit`, JDK 13+) from one trial start, which brought
 * the start to about 1.4 s on the same loaded machine. A JVM that cannot use the archive
 * (another Java version) ignores it with a warning and starts the slow way.
 *
 * Needs Java 8 or later (`java` on PATH, or JAVA_HOME); measured with OpenJDK 17.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { isExecutableFile } from './temporal-cli';
import manifest from './temporal-test-server.manifest.json';

const execFileAsync = promisify(execFile);

export const TEST_SERVER_VERSION = manifest.version;

type Log = (msg: string) => void;

const HOW_TO_GET_JAVA =
  'Install a Java runtime (8 or later; e.g. `apt-get install openjdk-17-jre-headless`) and put `java` on PATH or set JAVA_HOME, ' +
  "or set TEMPORAL_TEST_SERVER_PATH to a test server executable (Temporal's own download, https://temporal.download/temporal-test-server).";

/** `<installDir>/temporal-test-server-<VERSION>/temporal-test-server`, absolute. */
export function installedTestServerPath(installDir: string): string {
  return path.resolve(installDir, `temporal-test-server-${TEST_SERVER_VERSION}`, 'temporal-test-server');
}

export async function findOrInstallTestServer(opts: { configuredPath?: string; installDir: string; log?: Log }): Promise<string> {
  const log: Log = opts.log ?? (() => undefined);
  if (opts.configuredPath) {
    const configured = path.resolve(opts.configuredPath);
    if (!(await isExecutableFile(configured))) {
      throw new Error(
        `TEMPORAL_TEST_SERVER_PATH is set to "${opts.configuredPath}", but there is no executable file there. ` +
          'Point it at a Temporal test server executable, or unset it to install the one from Maven Central.',
      );
    }
    return configured;
  }
  const installed = installedTestServerPath(opts.installDir);
  if (await isExecutableFile(installed)) return installed;
  if (process.platform === 'win32') {
    throw new Error(`The test server install writes a POSIX shell launcher, which Windows cannot run. ${HOW_TO_GET_JAVA}`);
  }
  const java = await findJava();
  await install(path.dirname(installed), java, log);
  return installed;
}

/** `$JAVA_HOME/bin/java`, else `java` on PATH; checked by running `java -version`. */
async function findJava(): Promise<string> {
  const java = process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
  try {
    const { stderr, stdout } = await execFileAsync(java, ['-version'], { timeout: 30_000 });
    if (!/version/.test(stderr + stdout)) throw new Error(`"${java} -version" printed no version`);
  } catch (err) {
    throw new Error(
      `Temporal's test server runs on Java, and "${java}" does not run (${(err as Error).message}). ${HOW_TO_GET_JAVA}`,
    );
  }
  return java;
}

async function install(finalDir: string, java: string, log: Log): Promise<void> {
  const parent = path.dirname(finalDir);
  await fsp.mkdir(parent, { recursive: true });
  const tmp = await fsp.mkdtemp(path.join(parent, `.${path.basename(finalDir)}.tmp-`));
  try {
    const megabytes = (manifest.jars.reduce((n, j) => n + j.bytes, 0) / 1e6).toFixed(0);
    log(
      `Temporal test server: installing ${TEST_SERVER_VERSION} (${manifest.jars.length} jars, ${megabytes} MB) from Maven Central ...`,
    );
    const started = Date.now();
    await fsp.chmod(tmp, 0o755); // mkdtemp makes it private
    await fsp.mkdir(path.join(tmp, 'lib'));
    await inParallel(manifest.jars, 4, (jar) =>
      downloadVerified(jar, path.join(tmp, 'lib', path.basename(new URL(jar.url).pathname))),
    );
    // A directory left by an install that was interrupted before its launcher was written.
    if ((await exists(finalDir)) && !(await isExecutableFile(path.join(finalDir, 'temporal-test-server')))) {
      await fsp.rm(finalDir, { recursive: true, force: true });
    }
    try {
      await fsp.rename(tmp, finalDir);
    } catch (err) {
      // Another install finished first: keep its copy.
      if (await isExecutableFile(path.join(finalDir, 'temporal-test-server'))) return;
      throw err;
    }
    // The archive records the jars' paths, so it is made where they stay; the launcher,
    // written last, marks the install complete.
    const realDir = await fsp.realpath(finalDir); // as the launcher's `pwd -P` will name it
    const archive = path.join(realDir, 'classes.jsa');
    await recordClassArchive(java, path.join(realDir, 'lib'), archive, log);
    await fsp.writeFile(
      path.join(finalDir, 'temporal-test-server'),
      launcherScript(java, (await exists(archive)) ? 'classes.jsa' : null),
      { mode: 0o755 },
    );
    log(`Temporal test server: installed at ${finalDir} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

async function downloadVerified(jar: { url: string; sha256: string; bytes: number }, file: string): Promise<void> {
  let body: Buffer;
  try {
    const res = await fetch(jar.url);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    body = Buffer.from(await res.arrayBuffer());
  } catch (err) {
    throw new Error(
      `Temporal test server: downloading ${jar.url} failed (${(err as Error).message}). Maven Central must be reachable for the first install. ${HOW_TO_GET_JAVA}`,
    );
  }
  const sha256 = createHash('sha256').update(body).digest('hex');
  if (sha256 !== jar.sha256) {
    throw new Error(
      `Temporal test server: ${jar.url} has sha256 ${sha256}, but ${jar.sha256} is pinned in services/temporal-test-server.manifest.json; refusing to run it.`,
    );
  }
  await fsp.writeFile(file, body);
}

function launcherScript(java: string, archive: string | null): string {
  const cds = archive ? ` -XX:SharedArchiveFile="$here/${archive}" -Xlog:cds=off -Xlog:cds+dynamic=off` : '';
  return [
    '#!/bin/sh',
    `# Temporal's time-skipping test server ${TEST_SERVER_VERSION} (Maven Central), written by services/temporal-test-server.ts.`,
    '# Usage: temporal-test-server <port> [extra args], as @temporalio/testing starts it.',
    'here="$(cd "$(dirname "$0")" && pwd -P)"',
    `exec ${shellQuote(java)} -Xmx1g${cds} -cp "$here/lib/*" ${manifest.mainClass} "$@"`,
    '',
  ].join('\n');
}

/** One trial start with -XX:ArchiveClassesAtExit, stopped with SIGTERM once it listens: the JVM writes the archive on exit. */
async function recordClassArchive(java: string, libDir: string, archive: string, log: Log): Promise<void> {
  const port = await freePort();
  const child = spawn(
    java,
    [
      `-XX:ArchiveClassesAtExit=${archive}`,
      '-Xlog:cds=off',
      '-Xlog:cds+dynamic=off',
      '-cp',
      `${libDir}/*`,
      manifest.mainClass,
      String(port),
    ],
    {
      stdio: 'ignore',
    },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    if (!(await listening(port, child, 60_000))) throw new Error('it did not listen within 60 s');
    child.kill('SIGTERM');
    await exited;
    if (!(await exists(archive))) throw new Error('the JVM wrote no archive (it needs JDK 13 or later)');
  } catch (err) {
    child.kill('SIGKILL');
    await fsp.rm(archive, { force: true });
    log(`Temporal test server: no class-data archive (${(err as Error).message}); it starts without one, more slowly.`);
  }
}

async function listening(port: number, child: ChildProcess, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until && child.exitCode === null) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return true;
    await sleep(100);
  }
  return false;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function inParallel<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

const exists = (file: string) =>
  fsp.access(file).then(
    () => true,
    () => false,
  );
