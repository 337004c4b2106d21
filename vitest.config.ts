import { defineConfig } from 'vitest/config';

/** Tests that need nothing but Node: no database, no Redis, no process of the stack. */
const UNIT = [
  'packages/core/**/*.test.ts',
  'packages/api/**/*.test.ts',
  'packages/sdk/**/*.test.ts',
  'apps/web/**/*.test.ts',
  'examples/**/*.test.ts',
];
/** Tests of the runtime's parts against real Postgres and Redis, in the test's own process. */
const SERVICES = ['packages/runtime/**/*.test.ts', 'packages/db/**/*.test.ts', 'apps/worker/**/*.test.ts'];
/** Tests that start control planes and worker processes (whole stacks). */
const STACKS = ['apps/control/**/*.test.ts'];

// Three groups, one after the other (`sequence.groupOrder`), each as fast as it can safely go on two cores:
// - unit: two files at a time in forks that are reused (`isolate: false`): importing each file's modules afresh was
//   most of their time (41 s → 10 s for 50 files).
// - services: one file at a time (they measure timings), in one reused fork (112 s → 84 s for 30 files).
// - stacks: one file at a time, each in a fresh fork: they start workers and control planes and share the run's
//   database and Redis prefix, and a fresh process per file keeps what one leaves behind from the next.
export default defineConfig({
  test: {
    exclude: ['**/node_modules/**', 'e2e/**', '**/.next/**', '**/generated/**'],
    globalSetup: ['./vitest.global-setup.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT, isolate: false, maxWorkers: 2, sequence: { groupOrder: 1 } } },
      { extends: true, test: { name: 'services', include: SERVICES, isolate: false, fileParallelism: false, sequence: { groupOrder: 2 } } },
      { extends: true, test: { name: 'stacks', include: STACKS, fileParallelism: false, sequence: { groupOrder: 3 } } },
    ],
  },
});
