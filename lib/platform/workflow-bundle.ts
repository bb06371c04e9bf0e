// The workflow code a worker runs, bundled by webpack (Temporal's bundleWorkflowCode): once at
// build time for the image (scripts/build-assets.ts), or when a worker starts from the
// TypeScript sources. Webpack leaves about 72 MiB behind in the process that runs it, and a
// worker runs for days, so a worker started from the sources bundles in a short-lived child
// process and keeps only the code.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/** What both bundlings include: the workflows, and the failure converter the data converter names (lib/platform/temporal.ts). */
export const BUNDLE_SOURCES = {
  workflowsPath: require.resolve('../../workflows'),
  failureConverterPath: require.resolve('./failure-converter'),
};

// The child's whole program: bundle, write the code to the file named, say nothing unless it fails.
const CHILD = `
const [sources, out] = process.argv.slice(1);
const w = require(${JSON.stringify(require.resolve('@temporalio/worker'))});
w.bundleWorkflowCode({ ...JSON.parse(sources), logger: new w.DefaultLogger('WARN') })
  .then(({ code }) => require('node:fs').writeFileSync(out, code))
  .catch((err) => { console.error(err && err.stack || String(err)); process.exit(1); });
`;

/**
 * The bundle for Worker.create: the one built at build time when `prebuilt` exists (the
 * image), else one made now in a child process.
 */
export async function workflowBundle(prebuilt: string): Promise<{ codePath: string } | { code: string }> {
  return fs.existsSync(prebuilt) ? { codePath: prebuilt } : { code: await bundleWorkflowsInChild() };
}

/** Bundles the workflows in a child process and returns the code. */
async function bundleWorkflowsInChild(): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'workflow-bundle-'));
  const out = path.join(dir, 'bundle.js');
  try {
    await promisify(execFile)(process.execPath, ['-e', CHILD, JSON.stringify(BUNDLE_SOURCES), out]);
    return fs.readFileSync(out, 'utf8');
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`Bundling the workflows failed (${BUNDLE_SOURCES.workflowsPath}): ${stderr || String(err)}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
