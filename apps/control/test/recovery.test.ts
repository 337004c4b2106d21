import type { GraphInput } from '@keyflow/core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatorCounts, startStack, tableCounts, waitFor, waitForFinished, type Stack } from './harness.ts';

const settings = { seed: 5, rate: 100_000, keys: 20_000, skew: 'zipf', total: 1_500_000, splits: 8 } as const;
const graph = (table: string): GraphInput => ({
  vertices: [
    { id: 'events', type: 'generator', parallelism: 1, settings },
    { id: 'count', type: 'count', parallelism: 2 },
    { id: 'sink', type: 'postgres', parallelism: 2, settings: { table, valueField: 'count', flushIntervalMs: 200 } },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'sink', partitioning: 'forward' },
  ],
});

async function sql<T extends pg.QueryResultRow>(text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

describe('recovery', () => {
  let stack: Stack;
  beforeAll(async () => {
    // Heartbeats find a dead worker long before its task locks (30 s) expire; two restarts at most.
    stack = await startStack({ workers: 2, env: { WORKER_LOCK_MS: '30000', HEARTBEAT_TIMEOUT_MS: '2000', MAX_RESTARTS: '2' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('recovers from a killed worker from the last checkpoint, and every count stays exact', async () => {
    const p = await stack.client.createPipeline({ name: `recover-${stack.prefix}`, graph: graph('recovered_counts') });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 500 });
    await waitFor(async () => (await stack.client.listCheckpoints(job.id)).some((c) => c.status === 'COMPLETED'), 60_000, 'a completed checkpoint');

    const workers = await stack.client.listWorkers();
    const victim = workers.find((w) => w.subtasks.some((s) => s.jobId === job.id))!;
    const child = stack.workers.find((w) => w.pid === victim.pid)!;
    child.kill('SIGKILL');

    const recovered = await waitFor(
      async () => {
        const j = await stack.client.getJob(job.id);
        return j.events.some((e) => e.fromState === 'RECOVERING' && e.toState === 'RUNNING') && j;
      },
      60_000,
      'the job to recover',
    );
    const recovering = recovered.events.find((e) => e.toState === 'RECOVERING')!;
    expect(recovering.reason).toMatch(/no heartbeat for .* within 2000 ms \(worker lost\)/);
    expect(recovered.attempt).toBe(2);

    const done = await waitForFinished(stack, job.id, 110_000);
    expect(done.attempt).toBe(2);

    const expected = generatorCounts(settings);
    const actual = await tableCounts('recovered_counts');
    expect(actual.size).toBe(expected.size);
    expect([...expected].filter(([k, n]) => actual.get(k) !== n).slice(0, 5)).toEqual([]);
  });

  it('fails the job with the reason once its restarts are used up', async () => {
    // A table whose key column is an integer: every upsert of text keys fails, so the sink's subtask fails.
    await sql('CREATE TABLE broken_sink (key integer PRIMARY KEY, value jsonb, updated_at timestamptz)');
    const p = await stack.client.createPipeline({ name: `broken-${stack.prefix}`, graph: graph('broken_sink') });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 1000 });
    const failed = await waitFor(
      async () => {
        const j = await stack.client.getJob(job.id);
        return j.state === 'FAILED' && j;
      },
      90_000,
      'the job to fail',
    );
    expect(failed.events.filter((e) => e.toState === 'RECOVERING')).toHaveLength(2);
    expect(failed.failureReason).toMatch(/gave up after 2 restarts/);
    expect(failed.failureReason).toMatch(/column "key" is of type integer/);
  });
});
