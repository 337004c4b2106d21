import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { GraphInput } from '@keyflow/core';
import { expect } from 'vitest';
import { killWorkerRunning, tableCounts, waitFor, waitForCheckpoint, waitForRecovered, type Stack } from './harness.ts';
import { publishedCounts, type PublisherConfig, type PublishTarget } from './fixtures/publishedSet.ts';
import { converged, expectProgress, requestRescale } from './rescaleDriver.ts';

/** A broker feeding a pipeline in a test: the source vertex reading it, and where the publisher sends records. */
export interface Feed {
  /** The source vertex's type and settings (it gets the id 'events' and parallelism 1). */
  source: { type: string; settings: Record<string, unknown> };
  target: PublishTarget;
}

export interface ExactnessOptions {
  total: number;
  keys: number;
  /** Records per publish call. */
  batch?: number;
  /** How long publishing takes at least (paced): the failures and rescales happen while it goes on. */
  publishMs?: number;
}

/** Starts the publisher process; `progress()` is how many records it has published, `done` when it ends. */
function startPublisher(config: PublisherConfig): { progress(): number; done: Promise<void>; kill(): void } {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('./fixtures/publisher.ts', import.meta.url)), JSON.stringify(config)],
    {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let published = 0;
  let errors = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => {
    for (const m of text.matchAll(/published (\d+)/g)) published = Number(m[1]);
  });
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (errors = (errors + text).slice(-4000)));
  const done = new Promise<void>((resolve, reject) =>
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`the publisher exited with ${code} after ${published} records: ${errors}`)),
    ),
  );
  return { progress: () => published, done, kill: () => child.kill('SIGKILL') };
}

/**
 * Publishes a known bounded set while a `feed.source` → keyBy(user) → count → exactly-once Postgres pipeline runs,
 * kills a worker running the source once, rescales the source (1 → 2) and the count (2 → 3) live once each, and
 * checks that every key's count in the sink equals what was published: no loss, no duplicate. After each step the
 * job must make progress (records flow, a checkpoint completes), not only look healthy.
 */
export async function expectExactThroughFailures(stack: Stack, name: string, feed: Feed, opts: ExactnessOptions): Promise<void> {
  const { total, keys, batch = 5000, publishMs = 25_000 } = opts;
  const table = `${name}_${stack.prefix.replace(/\W/g, '_')}`.toLowerCase().slice(0, 60);
  const graph: GraphInput = {
    vertices: [
      { id: 'events', type: feed.source.type, parallelism: 1, settings: feed.source.settings },
      { id: 'count', type: 'count', parallelism: 2 },
      { id: 'sink', type: 'postgres', parallelism: 2, settings: { table, valueField: 'count' } },
    ],
    edges: [
      { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
      { from: 'count', to: 'sink', partitioning: 'forward' },
    ],
  };
  const p = await stack.client.createPipeline({ name: `${name}-${stack.prefix}`, graph });
  const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 500 });

  const expected = publishedCounts(total, keys);
  const publisher = startPublisher({ target: feed.target, total, keys, batch, publishMs, started: Date.now() });
  // A publisher that fails fails the test at once, not at the end.
  let publishFailed: unknown;
  publisher.done.catch((err) => (publishFailed = err));
  const check = () => {
    if (publishFailed) throw publishFailed;
  };
  try {
    await runSteps(stack, job.id, check, publisher, total);
  } finally {
    publisher.kill();
  }
  await expectCounts(stack, job.id, table, expected, total, keys);
}

/** The kill and the two rescales, each followed by progress, while the publisher goes on. */
async function runSteps(stack: Stack, jobId: string, check: () => void, publisher: { progress(): number; done: Promise<void> }, total: number) {
  const job = { id: jobId };
  await waitForCheckpoint(stack, job.id);
  check();
  await killWorkerRunning(stack, job.id, 'events');
  // The killed worker comes back, as a supervisor would start it again: the rescales below need its slots, and the
  // next test on this stack a full pool.
  await stack.addWorker();
  await waitForRecovered(stack, job.id, 60_000);
  await expectProgress(stack, job.id, 'count');
  check();
  await requestRescale(stack, job.id, 'events', 2);
  await converged(stack, job.id, 'events', 2);
  await expectProgress(stack, job.id, 'count');
  check();
  await requestRescale(stack, job.id, 'count', 3);
  await converged(stack, job.id, 'count', 3);
  await expectProgress(stack, job.id, 'count');
  // The steps should have come while records were still being published: else they proved less than they claim.
  expect(publisher.progress(), 'records published when the last step was done (raise publishMs if the steps came after all)').toBeLessThan(total);
  await publisher.done;
}

/** Everything published reaches the sink, once per record, and stays so. */
async function expectCounts(stack: Stack, jobId: string, table: string, expected: Map<string, number>, total: number, keys: number) {
  const job = { id: jobId };
  // Everything published reaches the sink once its checkpoint completes.
  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  await waitFor(async () => sum(await tableCounts(table)) >= total, 180_000, `all ${total} records counted in ${table}`, 500);
  const wrong = async () => {
    const actual = await tableCounts(table);
    return [...expected].filter(([k, n]) => actual.get(k) !== n).map(([key, n]) => ({ key, expected: n, actual: actual.get(key) }));
  };
  const actual = await tableCounts(table);
  expect(actual.size).toBe(keys);
  expect((await wrong()).slice(0, 10)).toEqual([]);
  // A later checkpoint changes nothing: no late duplicate.
  const since = Date.now();
  await waitFor(
    async () => (await stack.client.listCheckpoints(job.id)).some((c) => c.status === 'COMPLETED' && Date.parse(c.triggeredAt) > since),
    30_000,
    'one more completed checkpoint',
  );
  expect((await wrong()).slice(0, 10)).toEqual([]);
  const final = await stack.client.getJob(job.id);
  expect(final.state).toBe('RUNNING');
  expect(final.metrics?.vertices.events?.deadLetters ?? 0).toBe(0);
  await stack.client.cancelJob(job.id);
}
