import type { GraphInput } from '@keyflow/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatorCounts, startStack, tableCounts, waitFor, waitForFinished, waitForState, type Stack } from './harness.ts';

const settings = { seed: 21, rate: 80_000, keys: 100_000, skew: 'zipf', total: 2_000_000, splits: 16 } as const;
const graph: GraphInput = {
  vertices: [
    { id: 'events', type: 'generator', parallelism: 1, settings },
    { id: 'count', type: 'count', parallelism: 1 },
    { id: 'sink', type: 'postgres', parallelism: 1, settings: { table: 'rescaled_counts', valueField: 'count', flushIntervalMs: 500 } },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'sink', partitioning: 'forward' },
  ],
};

describe('live rescale', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ workers: 2, slots: 4, env: { RESCALE_SLOT_TIMEOUT_MS: '3000' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  /** Each running subtask of a job and when it started, from the workers' heartbeats. */
  const subtasks = async (jobId: string) =>
    new Map(
      (await stack.client.listWorkers()).flatMap((w) =>
        w.subtasks.filter((s) => s.jobId === jobId).map((s) => [`${s.vertexId}#${s.index}@${s.attempt}`, s.since] as const),
      ),
    );

  it('keeps every count exact while count goes 1→2→4→3→1 and the generator 1→2, without restarting anything else', async () => {
    const p = await stack.client.createPipeline({ name: `rescale-${stack.prefix}`, graph });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 1000 });
    await waitForState(stack, job.id, 'RUNNING', 60_000);
    // Workers list their subtasks in their next heartbeat, which may come after the job reports RUNNING.
    const before = await waitFor(
      async () => {
        const s = await subtasks(job.id);
        return s.size >= 2 && s;
      },
      10_000,
      "both subtasks in the workers' heartbeats",
    );
    expect([...before.keys()].sort()).toEqual(['count#0@1', 'events#0@1']);

    const rescale = async (vertexId: string, parallelism: number) => {
      const { scalingEvents } = await stack.client.rescaleJob(job.id, { parallelism: { [vertexId]: parallelism } });
      const id = scalingEvents[0]!.id;
      const done = await waitFor(
        async () => {
          const e = (await stack.client.listScalingEvents(job.id)).find((x) => x.id === id)!;
          if (e.status === 'FAILED' || e.status === 'ROLLED_BACK') throw new Error(`rescale ${id} ${e.status}: ${e.reason}`);
          return e.status === 'COMPLETED' && e;
        },
        60_000,
        `${vertexId} to reach parallelism ${parallelism}`,
      );
      expect(done.toParallelism).toBe(parallelism);
      for (const phase of ['alignedAt', 'snapshottedAt', 'restoredAt', 'runningAt'] as const) expect(done[phase]).not.toBeNull();
      // Only a rescale that adds subtasks starts any.
      expect(done.subtasksStartedAt === null).toBe(done.toParallelism < done.fromParallelism);
      expect(done.pauseMs).not.toBeNull();
      // The rescale names its checkpoint as the job's checkpoints list it: by number within the job, not by global id.
      const checkpoint = (await stack.client.listCheckpoints(job.id)).find((c) => c.id === done.checkpointId);
      expect(checkpoint).toMatchObject({ kind: 'RESCALE', number: done.checkpointNumber });
      return done;
    };

    const first = await rescale('count', 2);
    expect(first.keyGroupsMoved).toBe(64); // half of the 128 key groups moved to the new subtask, each counted once
    const [view] = await stack.client.keyGroups(job.id);
    expect(view!.subtasks.map((s) => [s.start, s.end])).toEqual([
      [0, 63],
      [64, 127],
    ]);
    await rescale('events', 2);
    await rescale('count', 4);
    await rescale('count', 3);
    await rescale('count', 1);

    const mid = await stack.client.getJob(job.id);
    expect(mid.state).toBe('RUNNING'); // the rescales happened while records flowed
    expect(mid.attempt).toBe(1);
    expect(mid.plan.vertices.count!.parallelism).toBe(1);
    expect(mid.plan.vertices.sink!.parallelism).toBe(1);
    expect(mid.plan.vertices.events!.parallelism).toBe(2);
    // The subtasks that no rescale touched kept running as the same subtasks.
    const after = await subtasks(job.id);
    expect(after.get('count#0@1')).toBe(before.get('count#0@1'));
    expect(after.get('events#0@1')).toBe(before.get('events#0@1'));
    expect(after.has('events#1@1')).toBe(true);

    const done = await waitForFinished(stack, job.id, 120_000);
    expect(done.events.filter((e) => e.toState === 'RECOVERING')).toEqual([]);

    const expected = generatorCounts(settings);
    const actual = await tableCounts('rescaled_counts');
    expect(actual.size).toBe(expected.size);
    expect([...expected].filter(([k, n]) => actual.get(k) !== n).slice(0, 5)).toEqual([]);
  });

  it('refuses parallelism outside 1…maxParallelism with 422 naming the limit', async () => {
    const p = await stack.client.createPipeline({
      name: `limits-${stack.prefix}`,
      graph: { ...graph, vertices: graph.vertices.map((v) => (v.id === 'sink' ? { ...v, settings: { table: 'limit_counts' } } : v)) },
    });
    const job = await stack.client.deployJob({ pipelineId: p.id });
    await waitForState(stack, job.id, 'RUNNING');
    await expect(stack.client.rescaleJob(job.id, { parallelism: { count: 129 } })).rejects.toMatchObject({
      status: 422,
      body: { message: expect.stringContaining('between 1 and 128') },
    });
    await expect(stack.client.rescaleJob(job.id, { parallelism: { count: 0 } })).rejects.toMatchObject({ status: 422 });
    await expect(stack.client.rescaleJob(job.id, { parallelism: { events: 17 } })).rejects.toMatchObject({
      status: 422,
      body: { message: expect.stringContaining('between 1 and 16') },
    });
    await expect(stack.client.rescaleJob(job.id, { parallelism: { nope: 2 } })).rejects.toMatchObject({ status: 404 });

    // The key-group view: one subtask owns all 128 key groups, and zipf keys make some groups far busier.
    const view = await waitFor(
      async () => {
        const [v] = await stack.client.keyGroups(job.id);
        return v && v.records.reduce((a, b) => a + b, 0) > 10_000 && v;
      },
      30_000,
      'records per key group',
    );
    expect(view.vertexId).toBe('count');
    expect(view.subtasks).toEqual([{ index: 0, start: 0, end: 127, records: view.records.reduce((a, b) => a + b, 0) }]);
    expect(view.records).toHaveLength(128);
    const mean = view.records.reduce((a, b) => a + b, 0) / 128;
    expect(Math.max(...view.records)).toBeGreaterThan(2 * mean);

    // More subtasks than free slots (8 in all, 2 used): the event waits for slots, then rolls back; the job goes on.
    const { scalingEvents } = await stack.client.rescaleJob(job.id, { parallelism: { count: 12 } });
    const rolledBack = await waitFor(
      async () => (await stack.client.listScalingEvents(job.id)).find((e) => e.id === scalingEvents[0]!.id && e.status === 'ROLLED_BACK'),
      30_000,
      'the rescale to roll back',
    );
    expect(rolledBack.reason).toMatch(/free worker slots/);
    const j = await stack.client.getJob(job.id);
    expect(j.state).toBe('RUNNING');
    expect(j.plan.vertices.count!.parallelism).toBe(1);
    await stack.client.cancelJob(job.id);
  });

  it('rescales a stateless operator and a keyed one from one request, in order, and every count stays exact', async () => {
    const events = { seed: 8, rate: 60_000, keys: 20_000, skew: 'zipf', total: 600_000, splits: 8 } as const;
    const p = await stack.client.createPipeline({
      name: `stateless-${stack.prefix}`,
      graph: {
        vertices: [
          { id: 'events', type: 'generator', parallelism: 1, settings: events },
          { id: 'tag', type: 'map', parallelism: 1, settings: { steps: [{ op: 'pick', fields: ['user'] }] } },
          { id: 'count', type: 'count', parallelism: 1 },
          { id: 'sink', type: 'postgres', parallelism: 1, settings: { table: 'stateless_counts', valueField: 'count', flushIntervalMs: 300 } },
        ],
        edges: [
          { from: 'events', to: 'tag', partitioning: 'rebalance' },
          { from: 'tag', to: 'count', partitioning: 'hash', key: 'user' },
          { from: 'count', to: 'sink', partitioning: 'forward' },
        ],
      },
    });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 1000 });
    await waitForState(stack, job.id, 'RUNNING');

    const { scalingEvents } = await stack.client.rescaleJob(job.id, { parallelism: { tag: 3, count: 2 } });
    expect(scalingEvents.map((e) => e.vertexId)).toEqual(['tag', 'count']);
    const [tag, count] = await waitFor(
      async () => {
        const all = await stack.client.listScalingEvents(job.id);
        const mine = scalingEvents.map((e) => all.find((x) => x.id === e.id)!);
        const bad = mine.find((e) => e.status === 'FAILED' || e.status === 'ROLLED_BACK');
        if (bad) throw new Error(`rescale ${bad.id} ${bad.status}: ${bad.reason}`);
        return mine.every((e) => e.status === 'COMPLETED') && mine;
      },
      60_000,
      'both rescales',
    );
    // The second waited for the first: it started its subtasks only once the first ran at its new parallelism.
    expect(new Date(count!.subtasksStartedAt!).getTime()).toBeGreaterThanOrEqual(new Date(tag!.runningAt!).getTime());
    expect(tag!.keyGroupsMoved).toBe(0); // a map has no keyed state to move
    expect(count!.keyGroupsMoved).toBeGreaterThan(0);
    const mid = await stack.client.getJob(job.id);
    expect([mid.plan.vertices.tag!.parallelism, mid.plan.vertices.count!.parallelism]).toEqual([3, 2]);

    await waitForFinished(stack, job.id, 90_000);
    const expected = generatorCounts(events);
    const actual = await tableCounts('stateless_counts');
    expect(actual.size).toBe(expected.size);
    expect([...expected].filter(([k, n]) => actual.get(k) !== n).slice(0, 5)).toEqual([]);
  });
});
