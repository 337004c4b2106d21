import type { GraphInput } from '@keyflow/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatorCounts, startStack, tableCounts, waitFor, waitForCheckpoint, waitForFinished, waitForState, type Stack } from './harness.ts';

const events = { seed: 33, rate: 60_000, keys: 10_000, skew: 'zipf', splits: 8 } as const;
const graph = (table: string, total?: number): GraphInput => ({
  vertices: [
    { id: 'events', type: 'generator', parallelism: 1, settings: { ...events, ...(total && { total }) } },
    { id: 'count', type: 'count', parallelism: 1 },
    { id: 'sink', type: 'postgres', parallelism: 1, settings: { table, valueField: 'count', flushIntervalMs: 300 } },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'sink', partitioning: 'forward' },
  ],
});

/** Waits until scaling event `id` reaches `status`; fails at once if it settles otherwise, saying how. */
const scalingReaches = (stack: Stack, jobId: string, id: number, status: string, timeoutMs: number) =>
  waitFor(
    async () => {
      const e = (await stack.client.listScalingEvents(jobId)).find((x) => x.id === id)!;
      if (e.status !== status && ['COMPLETED', 'FAILED', 'ROLLED_BACK', 'INTERRUPTED'].includes(e.status))
        throw new Error(`scaling event ${id} is ${e.status}, not ${status}: ${e.reason}`);
      return e.status === status && e;
    },
    timeoutMs,
    `scaling event ${id} to be ${status}`,
  );
const jobSubtasks = async (stack: Stack, jobId: string) =>
  (await stack.client.listWorkers())
    .flatMap((w) => w.subtasks.filter((s) => s.jobId === jobId).map((s) => `${s.vertexId}#${s.index}@${s.attempt}`))
    .sort();

describe('a rescale that cannot finish', () => {
  let stack: Stack;
  beforeAll(async () => {
    // Four slots in all: a job of two subtasks leaves two free, too few to take count from 1 to 4.
    stack = await startStack({
      workers: 2,
      slots: 2,
      env: { RESCALE_SLOT_TIMEOUT_MS: '6000', HEARTBEAT_TIMEOUT_MS: '1500', WORKER_LOCK_MS: '30000' },
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('waits for slots, visibly, then rolls back with the reason and leaves the job as it was', async () => {
    const p = await stack.client.createPipeline({ name: `slots-${stack.prefix}`, graph: graph('slot_counts') });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 1000 });
    await waitForState(stack, job.id, 'RUNNING');

    const { scalingEvents } = await stack.client.rescaleJob(job.id, { parallelism: { count: 4 } });
    const id = scalingEvents[0]!.id;
    await scalingReaches(stack, job.id, id, 'WAITING_FOR_SLOTS', 10_000);
    expect((await stack.client.getJob(job.id)).state).toBe('RESCALING');

    const rolledBack = await scalingReaches(stack, job.id, id, 'ROLLED_BACK', 30_000);
    expect(rolledBack.reason).toMatch(/waited 6000 ms for 3 free worker slots/);

    const after = await stack.client.getJob(job.id);
    expect(after.state).toBe('RUNNING');
    expect(after.attempt).toBe(1);
    expect(after.plan.vertices.count!.parallelism).toBe(1);
    // What was asked for is given up with it: the job does not try again on its own.
    expect(after.desiredParallelism.count).toBe(1);
    // The subtasks started for the rescale are gone; the job's own kept running and go on counting.
    await waitFor(async () => (await jobSubtasks(stack, job.id)).join() === 'count#0@1,events#0@1', 10_000, 'only the job’s own subtasks to run');
    const before = (await stack.client.getJob(job.id)).metrics?.vertices.count?.recordsIn ?? 0;
    await waitFor(async () => ((await stack.client.getJob(job.id)).metrics?.vertices.count?.recordsIn ?? 0) > before, 10_000, 'count to go on');
    await stack.client.cancelJob(job.id);
  });

  it('a request made while an earlier one waits for slots stands when the earlier one rolls back', async () => {
    const p = await stack.client.createPipeline({ name: `slots-then-down-${stack.prefix}`, graph: graph('slot_counts_2') });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 1000 });
    await waitForState(stack, job.id, 'RUNNING');

    // ×4 waits for slots the pool does not have; the user asks for ×2 (which it has) meanwhile.
    const first = (await stack.client.rescaleJob(job.id, { parallelism: { count: 4 } })).scalingEvents[0]!.id;
    await scalingReaches(stack, job.id, first, 'WAITING_FOR_SLOTS', 10_000);
    const second = (await stack.client.rescaleJob(job.id, { parallelism: { count: 2 } })).scalingEvents[0]!.id;
    await scalingReaches(stack, job.id, first, 'ROLLED_BACK', 30_000);
    // The rollback gives up ×4 only: ×2, asked for since, is still what the job goes to.
    expect((await stack.client.getJob(job.id)).desiredParallelism.count).toBe(2);
    const done = await scalingReaches(stack, job.id, second, 'COMPLETED', 60_000);
    expect([done.fromParallelism, done.toParallelism]).toEqual([1, 2]);

    // And it stays there: a checkpoint completes after, and no rescale of its own took it anywhere else.
    const since = Date.now();
    await waitFor(
      async () => (await stack.client.listCheckpoints(job.id)).some((c) => c.status === 'COMPLETED' && Date.parse(c.triggeredAt) > since + 500),
      30_000,
      'a checkpoint after the rescale',
    );
    const after = await stack.client.getJob(job.id);
    expect([after.state, after.plan.vertices.count!.parallelism, after.desiredParallelism.count]).toEqual(['RUNNING', 2, 2]);
    expect((await stack.client.listScalingEvents(job.id)).map((e) => [e.id, e.status])).toEqual(
      expect.arrayContaining([
        [first, 'ROLLED_BACK'],
        [second, 'COMPLETED'],
      ]),
    );
    expect(await stack.client.listScalingEvents(job.id)).toHaveLength(2);
    await stack.client.cancelJob(job.id);
  });
});

describe('a rescale that a worker loss interrupts', () => {
  let stack: Stack;
  beforeAll(async () => {
    // Four slots in all, as above; the pool gets its slots late (a killed worker's replacements), so the default
    // wait for slots applies.
    stack = await startStack({ workers: 2, slots: 2, env: { HEARTBEAT_TIMEOUT_MS: '1500', WORKER_LOCK_MS: '30000' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('a worker lost while a rescale waits interrupts it; recovered, the job goes on to the parallelism asked for, and every count stays exact', async () => {
    const settingsTotal = 1_500_000;
    const p = await stack.client.createPipeline({ name: `lost-${stack.prefix}`, graph: graph('lost_counts', settingsTotal) });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 500 });
    await waitForCheckpoint(stack, job.id);
    await waitFor(async () => (await jobSubtasks(stack, job.id)).length === 2, 10_000, 'both subtasks in the heartbeats');

    const { scalingEvents } = await stack.client.rescaleJob(job.id, { parallelism: { count: 4 } });
    const id = scalingEvents[0]!.id;
    await scalingReaches(stack, job.id, id, 'WAITING_FOR_SLOTS', 10_000);
    const victim = (await stack.client.listWorkers()).find((w) => w.subtasks.some((s) => s.jobId === job.id))!;
    stack.workers.find((w) => w.pid === victim.pid)!.kill('SIGKILL');
    // The pool grows meanwhile: room for count at 4 once the job runs again.
    await stack.addWorker();
    await stack.addWorker();

    // Depending on when the loss is noticed: while it still waited, or in its checkpoint once the new slots let it go on.
    const interrupted = await scalingReaches(stack, job.id, id, 'INTERRUPTED', 30_000);
    expect(interrupted.reason).toMatch(/recover|attempt 1 ended/);
    expect(interrupted.reason).toContain('goes on to ×4 once it runs again');
    const resumed = await waitFor(
      async () => (await stack.client.listScalingEvents(job.id)).find((e) => e.id > id && e.status === 'COMPLETED'),
      60_000,
      'the rescale to be carried out after the recovery',
    );
    expect(resumed).toMatchObject({ vertexId: 'count', fromParallelism: 1, toParallelism: 4 });
    expect(resumed.reason).toContain(`resumes scaling event ${id}`);

    const done = await waitForFinished(stack, job.id, 120_000);
    expect(done.attempt).toBeGreaterThanOrEqual(2);
    expect(done.plan.vertices.count!.parallelism).toBe(4);
    expect(done.events.some((e) => e.toState === 'RECOVERING' && /worker lost/.test(e.reason ?? ''))).toBe(true);

    const expected = generatorCounts({ ...events, total: settingsTotal });
    const actual = await tableCounts('lost_counts');
    expect(actual.size).toBe(expected.size);
    expect([...expected].filter(([k, n]) => actual.get(k) !== n).slice(0, 5)).toEqual([]);
  });
});
