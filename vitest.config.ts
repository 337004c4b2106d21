import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/**/*.test.ts', 'apps/**/*.test.ts', 'examples/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'e2e/**', '**/.next/**', '**/generated/**'],
    globalSetup: ['./vitest.global-setup.ts'],
    pool: 'forks',
    // Integration tests start workers and control planes and share the run's database and
    // Redis prefix: on two cores, one file at a time is both faster and safer.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
  },
});
