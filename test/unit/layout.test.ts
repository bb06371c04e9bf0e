// The layout's rules, checked on the import lines of every source file (README "Layout"):
// lib/contract imports nothing with I/O; lib/pipeline only the contract, the PII crypto and the pure checks;
// nothing in lib/ imports from workflows/, activities/, cli/ or the processes above it;
// workflow code takes values only from the contract and the Temporal workflow SDK. And
// the names the processes agree on (task queues, workflow IDs, the schedule's ID) are
// spelled in lib/contract/names.ts alone.
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '../..');
const SOURCE_DIRS = ['lib', 'workflows', 'activities', 'cli', 'services', 'scripts'];

/** Every TypeScript source file of the project (not tests, not generated code), relative to the root. */
function sourceFiles(): string[] {
  const out = fs.readdirSync(ROOT).filter((f) => f.endsWith('.ts'));
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.posix.join(dir, entry.name);
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith('.ts')) out.push(rel);
    }
  };
  SOURCE_DIRS.forEach(walk);
  return out;
}

interface Import {
  /** What the file names: './x', '../lib/contract/types', 'node:fs', 'zod'. */
  specifier: string;
  /** `import type …` / `export type … from`: erased at compile time, so it brings no code along. */
  typeOnly: boolean;
  line: number;
}

/** The imports and re-exports of a file, and its require() calls, as TypeScript parses them. */
function importsOf(file: string, text = fs.readFileSync(path.join(ROOT, file), 'utf8')): Import[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: Import[] = [];
  const add = (node: ts.Node, spec: ts.Expression | undefined, typeOnly: boolean) => {
    if (spec && ts.isStringLiteral(spec))
      found.push({ specifier: spec.text, typeOnly, line: source.getLineAndCharacterOfPosition(node.getStart()).line + 1 });
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const allNamedTypeOnly =
        !!clause &&
        !clause.name &&
        !!clause.namedBindings &&
        ts.isNamedImports(clause.namedBindings) &&
        clause.namedBindings.elements.length > 0 &&
        clause.namedBindings.elements.every((e) => e.isTypeOnly);
      add(node, node.moduleSpecifier, !!clause?.isTypeOnly || allNamedTypeOnly);
    } else if (ts.isExportDeclaration(node)) {
      add(node, node.moduleSpecifier, node.isTypeOnly);
    } else if (
      ts.isCallExpression(node) &&
      (node.expression.kind === ts.SyntaxKind.ImportKeyword ||
        (ts.isIdentifier(node.expression) && node.expression.text === 'require'))
    ) {
      add(node, node.arguments[0], false);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** An import as a path from the root ('lib/contract/types'), or the package it names ('zod', 'node:fs'). */
function target(file: string, specifier: string): { local: string } | { pkg: string } {
  if (!specifier.startsWith('.'))
    return { pkg: specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0] };
  return { local: path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier)) };
}

interface Rule {
  /** Files the rule is about. */
  files: RegExp;
  why: string;
  /** Whether an import (value or type) is allowed; `local` is a path from the root. */
  allows: (to: { local: string } | { pkg: string }, typeOnly: boolean) => boolean;
}

const under = (to: { local: string } | { pkg: string }, ...dirs: string[]) =>
  'local' in to && dirs.some((d) => to.local.startsWith(`${d}/`) || to.local === d);

const RULES: Rule[] = [
  {
    files: /^lib\//,
    why: 'nothing in lib/ imports from workflows/, activities/, cli/, services/, scripts/ or the processes (worker.ts, client.ts, recovery-worker.ts): lib/ is what they are built from',
    allows: (to) => !('local' in to) || to.local.startsWith('lib/') || to.local.startsWith('generated/'),
  },
  {
    files: /^lib\/contract\//,
    why: 'lib/contract is workflow-safe: it imports only the contract itself and @temporalio/common (no node: module, no I/O)',
    allows: (to) => ('pkg' in to ? to.pkg === '@temporalio/common' : under(to, 'lib/contract')),
  },
  {
    files: /^lib\/pipeline\//,
    why: "lib/pipeline is pure: it imports the contract, the PII crypto (lib/pii/crypto), the pure checks (lib/platform/guards, iso-date), ipaddr.js, and the keyring's type only",
    allows: (to, typeOnly) =>
      'pkg' in to
        ? to.pkg === 'ipaddr.js'
        : under(to, 'lib/contract', 'lib/pipeline', 'lib/pii/crypto', 'lib/platform/guards', 'lib/platform/iso-date') ||
          (typeOnly && to.local === 'lib/pii/keyring'),
  },
  {
    files: /^workflows\//,
    why: 'workflow code runs in the deterministic sandbox: values only from workflows/, lib/contract, @temporalio/workflow and @temporalio/common (types from anywhere)',
    allows: (to, typeOnly) =>
      typeOnly ||
      ('pkg' in to ? ['@temporalio/workflow', '@temporalio/common'].includes(to.pkg) : under(to, 'workflows', 'lib/contract')),
  },
];

/** Every import that breaks a rule, as `file:line imports specifier (why)`. */
function violations(files: { file: string; text?: string }[]): string[] {
  const out: string[] = [];
  for (const { file, text } of files) {
    for (const rule of RULES.filter((r) => r.files.test(file))) {
      for (const imp of importsOf(file, text)) {
        if (!rule.allows(target(file, imp.specifier), imp.typeOnly))
          out.push(`${file}:${imp.line} imports ${imp.specifier} (${rule.why})`);
      }
    }
  }
  return out;
}

describe('import rules', () => {
  const files = sourceFiles();

  test('the source files are found, and their imports are read', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'worker.ts',
        'lib/platform/config.ts',
        'lib/contract/names.ts',
        'workflows/ingest.ts',
        'scripts/chaos/scenario.ts',
      ]),
    );
    const config = importsOf('lib/platform/config.ts').map((i) => i.specifier);
    expect(config).toEqual(expect.arrayContaining(['node:path', './env-schema', '../contract/ingest-options']));
    expect(importsOf('workflows/ingest.ts').find((i) => i.specifier === '../activities/ingest')).toMatchObject({
      typeOnly: true,
    });
  });

  test("every source file keeps its folder's import rules", () => {
    expect(violations(files.map((file) => ({ file })))).toEqual([]);
  });

  test.each([
    ['lib/platform/config.ts', "import { log } from '../../cli/common';", /nothing in lib\/ imports from/],
    ['lib/ingest/drain.ts', "import type { IngestActivities } from '../../activities/ingest';", /nothing in lib\/ imports from/],
    ['lib/contract/types.ts', "import fs from 'node:fs';", /lib\/contract is workflow-safe/],
    ['lib/contract/types.ts', "import { createDb } from '../platform/db';", /lib\/contract is workflow-safe/],
    ['lib/pipeline/transform.ts', "import { loadKeyring } from '../pii/keyring';", /lib\/pipeline is pure/],
    ['lib/pipeline/mask.ts', "const pg = require('pg');", /lib\/pipeline is pure/],
    ['workflows/ingest.ts', "import { drain } from '../lib/ingest/drain';", /workflow code runs in the deterministic sandbox/],
  ])('%s with `%s` is refused', (file, line, why) => {
    const text = `${line}\n${fs.readFileSync(path.join(ROOT, file), 'utf8')}`;
    const found = violations([{ file, text }]);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(why);
    expect(found[0]).toMatch(new RegExp(`^${file}:1 `));
  });

  test('a type-only import from the keyring is allowed in lib/pipeline, a value import is not', () => {
    expect(violations([{ file: 'lib/pipeline/x.ts', text: "import type { Keyring } from '../pii/keyring';" }])).toEqual([]);
    expect(
      violations([{ file: 'lib/pipeline/x.ts', text: "import { type Keyring, refreshKeyring } from '../pii/keyring';" }]),
    ).toHaveLength(1);
  });
});

describe('names the processes agree on', () => {
  /** String and template-literal pieces that spell a task queue, workflow ID or schedule ID. */
  const SPELLINGS = [
    /^login-ingest$/,
    /^login-ingest-schedule$/,
    /^pii-reencrypt$/,
    /-pii-recovery$/,
    /^pii-recovery-$/,
    /^-scheduled$/,
  ];

  function spelledNames(file: string, text = fs.readFileSync(path.join(ROOT, file), 'utf8')): string[] {
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const out: string[] = [];
    const visit = (node: ts.Node) => {
      if (
        ts.isStringLiteral(node) ||
        ts.isNoSubstitutionTemplateLiteral(node) ||
        ts.isTemplateHead(node) ||
        ts.isTemplateMiddle(node) ||
        ts.isTemplateTail(node)
      ) {
        if (SPELLINGS.some((s) => s.test(node.text)))
          out.push(`${file}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1} ${JSON.stringify(node.text)}`);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
    return out;
  }

  test('are spelled in lib/contract/names.ts and nowhere else', () => {
    const home = spelledNames('lib/contract/names.ts');
    expect(home.length).toBeGreaterThanOrEqual(5);
    expect(
      sourceFiles()
        .filter((f) => f !== 'lib/contract/names.ts')
        .flatMap((f) => spelledNames(f)),
    ).toEqual([]);
  });

  test('a second spelling is found', () => {
    expect(spelledNames('cli/x.ts', "export const REENCRYPT_WORKFLOW_ID = 'pii-reencrypt';")).toEqual([
      'cli/x.ts:1 "pii-reencrypt"',
    ]);
    expect(spelledNames('lib/platform/x.ts', 'const q = `${e.TEMPORAL_TASK_QUEUE}-pii-recovery`;')).toHaveLength(1);
  });
});
