// A second SQS implementation for the tests: moto's server (PyPI `moto[server]`), so that
// nothing in the pipeline quietly depends on one emulator's behaviour. Installed once into
// .data/moto-venv (about 30 s), then started per test file on a free port.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../services/ports';

const run = promisify(execFile);
const MOTO_VERSION = '5.2.5';
const venv = path.join(__dirname, '..', '..', '.data', `moto-venv-${MOTO_VERSION}`);
const python = path.join(venv, 'bin', 'python');

async function ensureMoto(): Promise<void> {
  if (fs.existsSync(path.join(venv, '.installed'))) return;
  fs.rmSync(venv, { recursive: true, force: true });
  await run('python3', ['-m', 'venv', venv]);
  await run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', `moto[server]==${MOTO_VERSION}`], {
    maxBuffer: 16 * 1024 * 1024,
  });
  fs.writeFileSync(path.join(venv, '.installed'), MOTO_VERSION);
}

export async function startMoto(): Promise<{ endpoint: string; stop(): Promise<void> }> {
  await ensureMoto();
  const port = await freePort();
  const child = spawn(python, ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const endpoint = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${endpoint}/moto-api/`)).ok) break;
    } catch {
      // not listening yet
    }
    if (i > 150 || child.exitCode !== null) throw new Error(`moto_server did not start on ${endpoint}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
