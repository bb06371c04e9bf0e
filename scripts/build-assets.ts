// The second half of `npm run build` (after tsc): runs as dist/scripts/build-assets.js and
// completes dist/ so that it runs without the TypeScript sources: the SQL migrations and
// the sample next to the compiled code that reads them, and the workflows bundled once
// (dist/workflow-bundle.js; the worker uses it when present instead of bundling at start).
import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { BUNDLE_SOURCES } from '../lib/platform/workflow-bundle';

async function main() {
  const dist = path.join(__dirname, '..');
  const root = path.join(dist, '..');
  fs.cpSync(path.join(root, 'prisma', 'migrations'), path.join(dist, 'prisma', 'migrations'), { recursive: true });
  fs.cpSync(path.join(root, 'data'), path.join(dist, 'data'), { recursive: true });
  const started = Date.now();
  const { code } = await bundleWorkflowCode(BUNDLE_SOURCES);
  const out = path.join(dist, 'workflow-bundle.js');
  fs.writeFileSync(out, code);
  console.error(
    `Bundled the workflows into ${path.relative(root, out)} (${(code.length / 1024).toFixed(0)} KiB, ${Date.now() - started} ms).`,
  );
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
