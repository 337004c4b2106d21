import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countPipeline, startStack, waitFor, type GeneratorSettings, type Stack } from './harness.ts';
import { converged, expectProgress, OutputSampler, requestRescale, stopAndExpectExact } from './rescaleDriver.ts';

/**
 * Rescale sequences that once froze a job while it showed a green RUNNING: scaling an operator down and up again
 * let the new subtask read the scale-down's barrier from the channel of the subtask it replaced.
 */
const settings: GeneratorSettings = { seed: 41, rate: 20_000, keys: 5_000, skew: 'zipf', splits: 8 };

describe('rescale down, then up again', () => {
  let stack: Stack;
  beforeAll(async () => {
    // Every completed checkpoint keeps its state: the output check needs each one's source offsets.
    stack = await startStack({ workers: 2, slots: 4, env: { CHECKPOINT_RETENTION: '100000' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it.each([
    ['2→1→2', 2, [1, 2]],
    ['3→2→3', 3, [2, 3]],
  ])('%s: each rescale completes, the job keeps making progress, and the output is exactly-once', async (name, initial, targets) => {
    const table = `down_up_${initial}`;
    const graph = countPipeline(table, settings);
    graph.vertices = graph.vertices.map((v) => (v.id === 'events' ? v : { ...v, parallelism: initial }));
    const p = await stack.client.createPipeline({ name: `${table}-${stack.prefix}`, graph });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 1000 });
    await converged(stack, job.id, 'count', initial);
    const sampler = new OutputSampler(table);
    try {
      await expectProgress(stack, job.id, 'count');
      for (const target of targets) {
        const id = await requestRescale(stack, job.id, 'count', target);
        await converged(stack, job.id, 'count', target);
        const event = (await stack.client.listScalingEvents(job.id)).find((e) => e.id === id)!;
        expect(event.status, `${name}: rescale to ${target}`).toBe('COMPLETED');
        await expectProgress(stack, job.id, 'count');
      }
      // No recovery hid a freeze: the same attempt ran throughout.
      const j = await stack.client.getJob(job.id);
      expect(j.attempt).toBe(1);
      expect(j.stall).toBeNull();
      // The workers list each count subtask at its parallelism now, not the one it started with.
      await waitFor(
        async () => {
          const listed = (await stack.client.listWorkers()).flatMap((w) => w.subtasks.filter((s) => s.jobId === job.id && s.vertexId === 'count'));
          return listed.length === initial && listed.every((s) => s.parallelism === initial);
        },
        10_000,
        'the workers to list count’s subtasks at their parallelism now',
      );
    } finally {
      await sampler.stop();
    }
    await stopAndExpectExact(stack, job.id, table, settings);
    expect(sampler.count).toBeGreaterThan(5);
    expect(await sampler.violations(stack.prisma, job.id, settings)).toEqual([]);
  });

  it('the same output check fails an at-least-once sink: it shows values no completed checkpoint had', async () => {
    const table = 'down_up_at_least_once';
    const p = await stack.client.createPipeline({
      name: `${table}-${stack.prefix}`,
      graph: countPipeline(table, settings, { delivery: 'at-least-once', flushIntervalMs: 200 }),
    });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 1000 });
    await converged(stack, job.id, 'count', 2);
    const sampler = new OutputSampler(table);
    try {
      for (const target of [1, 2]) {
        await requestRescale(stack, job.id, 'count', target);
        await converged(stack, job.id, 'count', target);
        await expectProgress(stack, job.id, 'count');
      }
    } finally {
      await sampler.stop();
    }
    await stopAndExpectExact(stack, job.id, table, settings);
    // Its final table is exact too; only watching it while it ran tells the two guarantees apart.
    const violations = await sampler.violations(stack.prisma, job.id, settings);
    expect(violations.length).toBeGreaterThan(0);
    expect(violations[0]).toMatch(/no completed checkpoint had it/);
  });

  it('leaves nothing of a rescale in Redis: no channel of a removed subtask, no handover', async () => {
    const table = 'down_up_cleanup';
    const p = await stack.client.createPipeline({ name: `${table}-${stack.prefix}`, graph: countPipeline(table, settings) });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 1000 });
    await converged(stack, job.id, 'count', 2);
    const channels = async () => (await stack.redis.keys(`${stack.prefix}:{${job.id}}:1:ch:*`)).map((k) => k.split(':ch:')[1]).sort();
    // events → count over edge 0 (hash), count → sink chained: one channel per count subtask.
    expect(await channels()).toEqual(['0:0.0:0.0', '0:0.0:1.0']);
    await requestRescale(stack, job.id, 'count', 1);
    await converged(stack, job.id, 'count', 1);
    await waitFor(async () => (await channels()).join() === '0:0.0:0.0', 10_000, 'the channel to the removed count#1 to be deleted');
    const up = await requestRescale(stack, job.id, 'count', 2);
    await converged(stack, job.id, 'count', 2);
    // The new count#1 is a new incarnation, named by the rescale that started it.
    expect(await channels()).toEqual(['0:0.0:0.0', `0:0.0:1.${up}`]);
    expect(await stack.redis.keys(`${stack.prefix}:{${job.id}}:*:handover:*`)).toEqual([]);

    await stack.client.cancelJob(job.id);
    // An ended job leaves only its samples and dead letters (which expire), no channel, command stream or fence.
    const left = async () => (await stack.redis.keys(`${stack.prefix}:{${job.id}}:*`)).filter((k) => !/:(sample|dlq):/.test(k));
    await waitFor(async () => (await left()).length === 0, 15_000, 'the canceled job’s keys to be deleted').catch(async (err) => {
      throw new Error(`${(err as Error).message}; left: ${(await left()).join(', ')}`, { cause: err });
    });
  });
});
