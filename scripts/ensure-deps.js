#!/usr/bin/env node
// First-run set-up shared by `npm run demo` and `npm test`, so each works from a fresh
// clone: install the npm packages (from package-lock.json) when missing or stale, and
// generate the Prisma client when missing or older than the schema. Plain JavaScript: it
// runs before TypeScript tooling is installed.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const at = (...p) => path.join(root, ...p);
const mtime = (p) => (fs.existsSync(p) ? fs.statSync(p).mtimeMs : 0);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const installed = at('node_modules', '.package-lock.json');
if (!fs.existsSync(installed) || mtime(at('package-lock.json')) > mtime(installed)) {
  console.error('Installing npm packages (npm ci) ...');
  execFileSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
}

const client = at('generated', 'prisma', 'client.ts');
if (process.argv.includes('--generate') || mtime(at('prisma', 'schema.prisma')) > mtime(client)) {
  console.error('Generating the Prisma client ...');
  // `prisma generate` needs no schema engine, but the CLI looks for one before it starts and
  // would try to download it. Any existing executable satisfies the check (README: Prisma).
  const env = { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY || process.execPath };
  execFileSync(process.execPath, [at('node_modules', 'prisma', 'build', 'index.js'), 'generate'], { cwd: root, stdio: 'inherit', env });
}
