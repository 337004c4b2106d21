import { nexmarkQuery } from '@keyflow/core';
import { redisKeys } from '@keyflow/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countPipeline,
  expectExactCounts,
  startStack,
  waitFor,
  waitForCheckpoint,
  waitForFinished,
  waitForRecovered,
  waitForState,
  type Stack,
} from './harness.ts';

/**
 * A stuck job never looks healthy: a subtask that does not move while work waits is shown at once as a stall that
 * names it (and not the subtasks that merely wait for it), and the job fails over after the stall timeout instead
 * of waiting for checkpoints to time out one after another. Heartbeats are given a minute here, so that it is the
 * stall detector that finds these.
 */
const STALL_TIMEOUT_MS = 6000;

describe('stall detection', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      workers: 2,
      slots: 4,
      env: { HEARTBEAT_TIMEOUT_MS: '60000', STALL_WARN_MS: '1500', STALL_TIMEOUT_MS: String(STALL_TIMEOUT_MS), WORKER_LOCK_MS: '120000' },
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  const deploy = async (table: string, settings: Parameters<typeof countPipeline>[1], eventsParallelism = 1) => {
    const graph = countPipeline(table, settings);
    graph.vertices = graph.vertices.map((v) => (v.id === 'events' ? { ...v, parallelism: eventsParallelism } : v));
    const p = await stack.client.createPipeline({ name: `${table}-${stack.prefix}`, graph });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 1000 });
    await waitForCheckpoint(stack, job.id);
    return job.id;
  };

  /** The job's subtasks each worker runs, as `chain#index`. */
  const placement = async (jobId: string) =>
    waitFor(
      async () => {
        const workers = (await stack.client.listWorkers()).map((w) => ({
          pid: w.pid,
          subtasks: w.subtasks.filter((s) => s.jobId === jobId && s.attempt === 1),
        }));
        return workers.reduce((n, w) => n + w.subtasks.length, 0) === 3 && workers;
      },
      10_000,
      'the job’s subtasks in the heartbeats',
    );

  it('a window whose results are rare: its consumers read only watermarks for seconds and are never shown as stalled', async () => {
    // Nexmark q7 with the source as fast as it can go: event time moves a few milliseconds a second, so the 10 s
    // window fires rarely and the operators after it read watermark entries and nothing else (no record in or out,
    // an entry often just arrived when a report is taken). Before reports counted the entries read, they showed
    // as stalled several times a minute.
    const graph = nexmarkQuery('q7', { parallelism: 2, sink: 'blackhole', source: { seed: 7, rate: 0, eventsPerSecond: 10_000_000, splits: 4 } });
    const p = await stack.client.createPipeline({ name: `stall-rare-window-${stack.prefix}`, graph });
    const { id: jobId } = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 2000 });
    await waitForState(stack, jobId, 'RUNNING');
    const until = Date.now() + 12_000;
    let watched = 0;
    while (Date.now() < until) {
      const job = await stack.client.getJob(jobId);
      expect(job.stall, `stalled after ${watched} looks`).toBeNull();
      expect(job.state).toBe('RUNNING');
      watched++;
      await new Promise((r) => setTimeout(r, 200));
    }
    // It moved all along.
    const job = await stack.client.getJob(jobId);
    expect(job.metrics?.vertices.bids?.recordsIn ?? 0).toBeGreaterThan(0);
    await stack.client.cancelJob(jobId);
  });

  it('a frozen worker (SIGSTOP): its subtasks are named as stalled within the warning time, and the job fails over', async () => {
    const settings = { seed: 3, rate: 40_000, keys: 5_000, skew: 'zipf', total: 1_200_000, splits: 8 } as const;
    const jobId = await deploy('stall_frozen', settings);
    const workers = await placement(jobId);
    const victim = workers.find((w) => w.subtasks.some((s) => s.vertexId === 'count'))!;
    const frozen = victim.subtasks.map((s) => `${s.vertexId}#${s.index}`).sort();
    const child = stack.workers.find((w) => w.pid === victim.pid)!;
    const frozenAt = Date.now();
    child.kill('SIGSTOP');
    try {
      // Each frozen subtask is named once its last report is older than the warning time; no other subtask ever is.
      const named = new Set<string>();
      const stalled = await waitFor(
        async () => {
          const stall = (await stack.client.getJob(jobId)).stall;
          for (const s of stall?.subtasks ?? []) named.add(s.subtask);
          return stall && stall.subtasks.length === frozen.length && stall;
        },
        STALL_TIMEOUT_MS,
        'the stall to name every frozen subtask',
      );
      expect([...named].sort()).toEqual(frozen);
      expect(stalled.subtasks.map((s) => s.subtask).sort()).toEqual(frozen);
      for (const s of stalled.subtasks) expect(s.reason).toMatch(/has not reported/);
      // The job list shows it too, while the state still reads RUNNING.
      const listed = (await stack.client.listJobs()).find((j) => j.id === jobId)!;
      expect(listed.stall?.subtasks.map((s) => s.subtask).sort()).toEqual(frozen);
      const recovered = await waitForRecovered(stack, jobId, STALL_TIMEOUT_MS + 20_000);
      const cause = recovered.events.find((e) => e.toState === 'RECOVERING')!;
      expect(cause.reason).toMatch(/^stalled for \d+ s: /);
      for (const s of frozen) expect(cause.reason).toContain(s);
      // Detected by the stall timeout, far sooner than the minute heartbeats were given.
      expect(Date.parse(cause.at) - frozenAt).toBeLessThan(STALL_TIMEOUT_MS + 10_000);
    } finally {
      child.kill('SIGCONT');
    }
    const done = await waitForFinished(stack, jobId, 120_000);
    expect(done.stall).toBeNull();
    await expectExactCounts('stall_frozen', settings);
  });

  it('a channel that never drains: the subtask that stopped reading it is named, not its blocked producer, and the job fails over', async () => {
    const settings = { seed: 4, rate: 40_000, keys: 5_000, skew: 'uniform', total: 1_200_000, splits: 8 } as const;
    const jobId = await deploy('stall_channel', settings, 2);
    // A barrier no checkpoint explains lands in the channel events#0 → count#1 (a stale entry, a foreign writer):
    // count#1 blocks that channel while it waits for the same barrier from events#1, which never sends it.
    const key = redisKeys(stack.prefix).channel(jobId, 1, 0, [0, 0], [1, 0]);
    await stack.redis.xadd(key, '*', 't', 'w', 's', String(2 ** 40), 'n', '999999999:999999999');

    const stalled = await waitFor(async () => (await stack.client.getJob(jobId)).stall, STALL_TIMEOUT_MS, 'the stall to show');
    expect(stalled.subtasks).toMatchObject([{ subtask: 'count#1', reason: 'is aligning on checkpoint 999999999, which is not in flight' }]);
    const recovered = await waitForRecovered(stack, jobId, STALL_TIMEOUT_MS + 20_000);
    const cause = recovered.events.find((e) => e.toState === 'RECOVERING')!;
    expect(cause.reason).toContain('count#1 is aligning on checkpoint 999999999');
    expect(cause.reason).not.toContain('events#0');
    const done = await waitForFinished(stack, jobId, 120_000);
    expect(done.attempt).toBe(2);
    await expectExactCounts('stall_channel', settings);
  });

  it('accepts a rescale while the job recovers, and carries it out once it runs again', async () => {
    const settings = { seed: 6, rate: 30_000, keys: 5_000, skew: 'zipf', total: 1_500_000, splits: 8 } as const;
    const jobId = await deploy('stall_recovering_rescale', settings);
    const workers = await placement(jobId);
    const victim = workers.find((w) => w.subtasks.some((s) => s.vertexId === 'count'))!;
    stack.workers.find((w) => w.pid === victim.pid)!.kill('SIGKILL');
    await stack.addWorker();
    await waitForState(stack, jobId, 'RECOVERING', STALL_TIMEOUT_MS + 10_000);
    const { scalingEvents } = await stack.client.rescaleJob(jobId, { parallelism: { count: 3 } });
    expect(scalingEvents[0]).toMatchObject({ status: 'QUEUED', toParallelism: 3 });
    expect((await stack.client.getJob(jobId)).desiredParallelism.count).toBe(3);
    const done = await waitFor(
      async () => (await stack.client.listScalingEvents(jobId)).find((e) => e.id === scalingEvents[0]!.id && e.status === 'COMPLETED'),
      60_000,
      'the queued rescale to complete',
    );
    expect(done.fromParallelism).toBe(2);
    const finished = await waitForFinished(stack, jobId, 120_000);
    expect(finished.plan.vertices.count!.parallelism).toBe(3);
    await expectExactCounts('stall_recovering_rescale', settings);
  });
});

describe('a job that cannot start', () => {
  let stack: Stack;
  beforeAll(async () => {
    // One worker of two slots for a job of three subtasks: one of them waits for a slot no worker has.
    stack = await startStack({ workers: 1, slots: 2, env: { START_WARN_MS: '1500', START_TIMEOUT_MS: '8000' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('asked to go down while it cannot start, restarts at once at the lower parallelism; the rescale completes and every count is exact', async () => {
    const settings = { seed: 6, rate: 20_000, keys: 2_000, skew: 'uniform', total: 100_000, splits: 4 } as const;
    const p = await stack.client.createPipeline({ name: `start_down_${stack.prefix}`, graph: countPipeline('stall_start_down', settings) });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 1000 });
    await waitFor(async () => (await stack.client.getJob(job.id)).stall, 10_000, 'the starting job to show a stall');
    const { scalingEvents } = await stack.client.rescaleJob(job.id, { parallelism: { count: 1 } });

    // At once, not after the start timeout: the restart says why.
    const restart = await waitFor(
      async () => (await stack.client.getJob(job.id)).events.find((e) => e.toState === 'RECOVERING'),
      6_000,
      'a restart at the lower parallelism',
    );
    expect(restart.reason).toBe('restarts at the lower parallelism asked for (count ×2 → ×1): its subtasks could not all start');
    const done = await waitForFinished(stack, job.id, 120_000);
    expect(done.plan.vertices.count!.parallelism).toBe(1);
    expect(done.plan.vertices.sink!.parallelism).toBe(1);
    expect(done.stall).toBeNull();
    expect(done.events.filter((e) => e.toState === 'RECOVERING')).toHaveLength(1);
    const rescale = (await stack.client.listScalingEvents(job.id)).find((e) => e.id === scalingEvents[0]!.id);
    expect(rescale).toMatchObject({ status: 'COMPLETED', fromParallelism: 2, toParallelism: 1, reason: 'already at parallelism 1' });
    await expectExactCounts('stall_start_down', settings);
  });

  it('is shown as stalled while it schedules, naming the subtask no worker took; it fails over after the start timeout, and runs once a worker comes', async () => {
    const settings = { seed: 5, rate: 20_000, keys: 2_000, skew: 'uniform', total: 200_000, splits: 4 } as const;
    const p = await stack.client.createPipeline({ name: `start_${stack.prefix}`, graph: countPipeline('stall_start', settings) });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 1000 });
    const stalled = await waitFor(async () => (await stack.client.getJob(job.id)).stall, 10_000, 'the starting job to show a stall');
    const shown = await stack.client.getJob(job.id);
    expect(shown.state).toBe('SCHEDULING');
    expect(stalled.subtasks).toHaveLength(1);
    expect(stalled.subtasks[0]!.reason).toMatch(/^has not started: no worker took it/);
    // Once the heartbeats list the two subtasks that did start, the reason says what the pool is short of.
    await waitFor(
      async () =>
        (await stack.client.getJob(job.id)).stall?.subtasks[0]?.reason ===
        "has not started: no worker took it: all 2 slots of the pool's 1 worker are in use (add a worker, or lower a parallelism)",
      10_000,
      'the stall to name the full pool',
    );
    expect((await stack.client.listJobs()).find((j) => j.id === job.id)?.stall?.subtasks).toHaveLength(1);

    const recovering = await waitFor(
      async () => {
        const j = await stack.client.getJob(job.id);
        return j.events.find((e) => e.toState === 'RECOVERING') && j;
      },
      30_000,
      'a fail-over after the start timeout',
    );
    expect(recovering.events.find((e) => e.toState === 'RECOVERING')!.reason).toMatch(
      new RegExp(`^stalled for \\d+ s: ${stalled.subtasks[0]!.subtask} has not started: no worker took it`),
    );

    await stack.addWorker();
    await waitForCheckpoint(stack, job.id);
    const done = await waitForFinished(stack, job.id, 120_000);
    expect(done.stall).toBeNull();
    await expectExactCounts('stall_start', settings);
  });
});
