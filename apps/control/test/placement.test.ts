import type { GraphInput } from '@keyflow/core';
import { redisKeys } from '@keyflow/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killWorkerRunning, startStack, waitFor, waitForRecovered, waitForState, type Stack } from './harness.ts';

/**
 * Each operator's subtasks spread over the pool's workers (as Flink's cluster.evenly-spread-out-slots): a worker
 * process runs its subtasks on one thread, so two subtasks of one operator on one worker while another stands idle
 * with free slots halve that operator's capacity. BullMQ alone hands a task to whichever worker asks first.
 */
const events = { seed: 5, rate: 2000, keys: 1000, skew: 'uniform', splits: 8 } as const;

/** events (p) → count (p) → blackhole (chained with count): two chains of p subtasks each. */
const pipeline = (p: { events: number; count: number }): GraphInput => ({
  vertices: [
    { id: 'events', type: 'generator', parallelism: p.events, settings: events },
    { id: 'count', type: 'count', parallelism: p.count },
    { id: 'sink', type: 'blackhole', parallelism: p.count },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'sink', partitioning: 'forward' },
  ],
});

describe('placement of subtasks', () => {
  let stack: Stack;
  beforeAll(async () => {
    // Slots to spare: every subtask of these tests could fit on one worker.
    stack = await startStack({ workers: 2, slots: 8 });
  });
  afterAll(async () => {
    await stack?.close();
  });

  /** Per worker (in the pool's order), how many subtasks of each chain of the job's attempt it runs, once `total` run. */
  const spread = (jobId: string, total: number, attempt = 1) =>
    waitFor(
      async () => {
        const workers = await stack.client.listWorkers();
        const running = workers.map((w) => w.subtasks.filter((s) => s.jobId === jobId && s.attempt === attempt));
        if (running.flat().length !== total) return false;
        return running.map((subtasks) => {
          const per: Record<string, number> = {};
          for (const s of subtasks) per[s.vertexId] = (per[s.vertexId] ?? 0) + 1;
          return per;
        });
      },
      20_000,
      `the job's ${total} subtasks in the workers' heartbeats`,
    );

  const deploy = async (name: string, graph: GraphInput) => {
    const p = await stack.client.createPipeline({ name: `${name}-${stack.prefix}`, graph });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 2000 });
    await waitForState(stack, job.id, 'RUNNING', 60_000);
    return job.id;
  };

  it('spreads each operator of every job over both workers, job after job', async () => {
    // Without placement, a job's four subtasks landed so on about one deploy in three (measured with Nexmark q11).
    const jobs: string[] = [];
    for (let i = 0; i < 3; i++) {
      const jobId = await deploy(`spread-${i}`, pipeline({ events: 2, count: 2 }));
      jobs.push(jobId);
      expect(await spread(jobId, 4), `job ${i + 1}`).toEqual([
        { events: 1, count: 1 },
        { events: 1, count: 1 },
      ]);
    }
    // An odd parallelism: one worker runs one more of it, never all.
    const odd = await deploy('spread-odd', pipeline({ events: 1, count: 3 }));
    const perWorker = await spread(odd, 4);
    expect(perWorker.map((w) => w.count ?? 0).sort()).toEqual([1, 2]);
    expect(perWorker.map((w) => w.events ?? 0).sort()).toEqual([0, 1]);
    for (const id of [...jobs, odd]) await stack.client.cancelJob(id);
  });

  it('a live rescale starts its new subtasks on the worker that runs fewer of that operator', async () => {
    const jobId = await deploy('spread-rescale', pipeline({ events: 1, count: 1 }));
    await spread(jobId, 2);
    for (const [to, expected] of [
      [2, [1, 1]],
      [4, [2, 2]],
    ] as const) {
      const { scalingEvents } = await stack.client.rescaleJob(jobId, { parallelism: { count: to } });
      const id = scalingEvents[0]!.id;
      await waitFor(
        async () => {
          const e = (await stack.client.listScalingEvents(jobId)).find((x) => x.id === id)!;
          if (e.status === 'FAILED' || e.status === 'ROLLED_BACK') throw new Error(`rescale ${id} ${e.status}: ${e.reason}`);
          return e.status === 'COMPLETED';
        },
        60_000,
        `count to reach parallelism ${to}`,
      );
      const perWorker = await spread(jobId, 1 + to);
      expect(perWorker.map((w) => w.count ?? 0).sort(), `count at ${to}`).toEqual(expected);
    }
    await stack.client.cancelJob(jobId);
  });

  it('a recovered attempt is placed by what each operator used before the failure', async () => {
    const jobId = await deploy('spread-recovered', pipeline({ events: 1, count: 2 }));
    // Every chain has reported its worker's CPU (workers report once a second).
    await waitFor(
      async () =>
        (await stack.client.getJob(jobId)).metrics?.subtasks.filter((s) => s.vertexId !== 'sink' && s.recordsInPerSec + s.recordsOutPerSec > 0)
          .length === 3,
      20_000,
      'metrics from all three subtasks',
    );
    const replacement = await stack.addWorker('placement-replacement');
    try {
      await killWorkerRunning(stack, jobId, 'count');
      await waitForRecovered(stack, jobId, 60_000);
      const subtasks = await waitFor(
        async () => {
          const running = (await stack.client.listWorkers()).flatMap((w) => w.subtasks.filter((s) => s.jobId === jobId && s.attempt === 2));
          return running.length === 3 && running;
        },
        20_000,
        "the recovered attempt's subtasks in the workers' heartbeats",
      );
      // Each carries its share of its operator's CPU before; the two counts share count's evenly.
      for (const s of subtasks) expect(s.cost, `${s.vertexId}#${s.index}`).toBeGreaterThan(0);
      const counts = subtasks.filter((s) => s.vertexId === 'count').map((s) => s.cost);
      expect(counts[0]).toBe(counts[1]);
      await stack.client.cancelJob(jobId);
    } finally {
      replacement.kill('SIGTERM');
    }
  });

  it('a worker that looks free but takes no task delays a task a little, never keeps it from running', async () => {
    // A worker that beats with free slots and never reads the task queue (hung on something else): every task is
    // first handed back for it, then taken by a worker that asks after a few tries.
    const keys = redisKeys(stack.prefix);
    const ghost = 'ghost-worker';
    const beat = () =>
      stack.redis
        .multi()
        .eval(
          `local t = redis.call('TIME')
           redis.call('HSET', KEYS[1], 'id', ARGV[1], 'host', 'elsewhere', 'pid', '1', 'slots', '64', 'subtasks', '[]', 'operators', '[]',
             'lastHeartbeat', tostring(t[1] * 1000 + math.floor(t[2] / 1000)))
           redis.call('PEXPIRE', KEYS[1], 5000)`,
          1,
          keys.worker(ghost),
          ghost,
        )
        .sadd(keys.workers, ghost)
        .exec();
    await beat();
    const beating = setInterval(() => void beat(), 200);
    try {
      const jobId = await deploy('spread-ghost', pipeline({ events: 2, count: 2 }));
      const perWorker = await spread(jobId, 4);
      expect(perWorker.reduce((n, w) => n + (w.events ?? 0) + (w.count ?? 0), 0)).toBe(4);
      await stack.client.cancelJob(jobId);
    } finally {
      clearInterval(beating);
      await stack.redis.multi().del(keys.worker(ghost)).srem(keys.workers, ghost).exec();
    }
  });
});
