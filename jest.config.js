// Three projects: unit tests of pure logic (fast, no services); workflow tests of the
// workflows' rules on Temporal's time-skipping test server with scripted activities
// (test/workflows/global-setup.ts installs the server); and integration tests against real
// services (Temporal dev server, PostgreSQL, an SQS emulator) that
// test/integration/global-setup.ts starts once for the whole run.
/** @type {import('jest').Config} */
const tsJest = ['ts-jest', { tsconfig: 'tsconfig.json' }];
module.exports = {
  testTimeout: 120000,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
      transform: { '^.+\\.ts$': tsJest },
    },
    {
      displayName: 'workflows',
      testEnvironment: 'node',
      testMatch: ['<rootDir>/test/workflows/**/*.test.ts'],
      transform: { '^.+\\.ts$': tsJest },
      globalSetup: '<rootDir>/test/workflows/global-setup.ts',
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      transform: { '^.+\\.ts$': tsJest },
      globalSetup: '<rootDir>/test/integration/global-setup.ts',
      globalTeardown: '<rootDir>/test/integration/global-teardown.ts',
    },
  ],
};
