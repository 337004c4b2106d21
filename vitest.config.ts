import { defineConfig } from 'vitest/config';

const EXCLUDE = ['**/node_modules/**', 'e2e/**', '**/.next/**', '**/generated/**'];
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
/** Gives each stacks file a database of its own. */
const OWN_DATABASE = './apps/control/test/ownDatabase.ts';
/**
 * Stack tests that run alone, after the others, because a second file beside them on two cores would move what they
 * assert: how soon a stall is named and that it is never named falsely, how busy a slow operator reads, how a delay
 * proxy delays, and (windows) that exactly the generator's late events are counted late, which holds only while its
 * sources keep close to each other in event time (it failed once beside another file: 601 of 700 counted late).
 */
const STACKS_ALONE = [
  'apps/control/test/stall.test.ts',
  'apps/control/test/slowOperator.test.ts',
  'apps/control/test/socket.test.ts',
  'apps/control/test/delayProxy.test.ts',
  'apps/control/test/windows.test.ts',
];

// Four groups, one after the other (`sequence.groupOrder`), each as fast as it can safely go on two cores:
// - unit: two files at a time in forks that are reused (`isolate: false`): importing each file's modules afresh was
//   most of their time (41 s → 10 s for 50 files).
// - services: one file at a time (they measure timings), in one reused fork (112 s → 84 s for 30 files).
// - stacks: two files at a time, each in a fresh fork with a database of its own (apps/control/test/ownDatabase.ts)
//   and each stack with its own Redis prefix. Most of their time is spent waiting (for checkpoints, timeouts,
//   recoveries): one at a time, the two cores were half idle, and the stack files took 26 min; now 19 min with
//   stacks-alone. A fresh process per file keeps what one leaves behind from the next.
// - stacks-alone: the few whose assertions a neighbour would move (STACKS_ALONE), one at a time, last.
export default defineConfig({
  test: {
    exclude: EXCLUDE,
    globalSetup: ['./vitest.global-setup.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT, isolate: false, maxWorkers: 2, sequence: { groupOrder: 1 } } },
      { extends: true, test: { name: 'services', include: SERVICES, isolate: false, fileParallelism: false, sequence: { groupOrder: 2 } } },
      {
        extends: true,
        test: {
          name: 'stacks',
          include: STACKS,
          exclude: [...EXCLUDE, ...STACKS_ALONE],
          setupFiles: [OWN_DATABASE],
          maxWorkers: 2,
          sequence: { groupOrder: 3 },
        },
      },
      {
        extends: true,
        test: { name: 'stacks-alone', include: STACKS_ALONE, setupFiles: [OWN_DATABASE], fileParallelism: false, sequence: { groupOrder: 4 } },
      },
    ],
  },
});
