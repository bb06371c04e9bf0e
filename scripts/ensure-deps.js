#!/usr/bin/env node
// First-run set-up shared by `npm run demo` and `npm test`, so each works from a fresh
// clone: install the npm packages (from package-lock.json) when missing or stale, and
// generate the Prisma client when missing or older than the schema. Plain JavaScript: it
// runs before TypeScript tooling is installed.
//
// `--postinstall` (package.json's postinstall: `npm ci` / `npm install` run it) only
// generates the client, never installs: after a plain `npm ci` every door
// (`npx ts-node client.ts`, `npx ts-node worker.ts`) works. With `npm ci --omit=dev` the
// Prisma CLI is absent; then the client must have been generated before (the Dockerfile's
// build stage does that), and this says so instead of failing the install.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const at = (...p) => path.join(root, ...p);
const mtime = (p) => (fs.existsSync(p) ? fs.statSync(p).mtimeMs : 0);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const postinstall = process.argv.includes('--postinstall');
const installed = at('node_modules', '.package-lock.json');
if (!postinstall && (!fs.existsSync(installed) || mtime(at('package-lock.json')) > mtime(installed))) {
  console.error('Installing npm packages (npm ci) ...');
  execFileSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
}

const client = at('generated', 'prisma', 'client.ts');
const prismaCli = at('node_modules', 'prisma', 'build', 'index.js');
if (postinstall && !fs.existsSync(prismaCli)) {
  if (!fs.existsSync(client)) {
    console.error(
      'postinstall: the Prisma CLI (a devDependency) is not installed, so the Prisma client was not generated; run `npm ci` with devDependencies (or generate it at build time, as the Dockerfile does).',
    );
  }
  process.exit(0);
}
if (postinstall || process.argv.includes('--generate') || mtime(at('prisma', 'schema.prisma')) > mtime(client)) {
  console.error('Generating the Prisma client ...');
  // `prisma generate` needs no schema engine, but the CLI looks for one before it starts and
  // would try to download it. Any existing executable satisfies the check (README: Prisma).
  const env = { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY || process.execPath };
  execFileSync(process.execPath, [prismaCli, 'generate'], { cwd: root, stdio: 'inherit', env });
}
