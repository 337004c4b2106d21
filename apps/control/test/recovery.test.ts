import { postgresSinkSettings, type Rec } from '@keyflow/core';
import { ChannelWriter, defaultRuntimeSettings, PostgresSink, redisKeys, SinkFencedError, withScripts } from '@keyflow/runtime';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countPipeline,
  expectExactCounts,
  killWorkerRunning,
  startStack,
  waitFor,
  waitForCheckpoint,
  waitForFinished,
  waitForRecovered,
  waitForState,
  type Stack,
} from './harness.ts';

const settings = { seed: 5, rate: 100_000, keys: 20_000, skew: 'zipf', total: 1_500_000, splits: 8 } as const;
const graph = (table: string) => countPipeline(table, settings, { flushIntervalMs: 200 });

/** Runs `text` as the sinks' role, in their schema. */
async function sql<T extends pg.QueryResultRow>(text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: process.env.KEYFLOW_SINK_DATABASE_URL });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

describe('recovery', () => {
  let stack: Stack;
  const waitForFailed = (jobId: string) => waitForState(stack, jobId, 'FAILED', 90_000);
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
    await waitForCheckpoint(stack, job.id);

    const workers = await stack.client.listWorkers();
    const victim = workers.find((w) => w.subtasks.some((s) => s.jobId === job.id))!;
    const child = stack.workers.find((w) => w.pid === victim.pid)!;
    const lastCompleted = (await stack.client.listCheckpoints(job.id)).find((c) => c.status === 'COMPLETED')!;
    const killedAt = Date.now();
    child.kill('SIGKILL');

    const recovered = await waitForRecovered(stack, job.id, 60_000);
    const recovering = recovered.events.find((e) => e.toState === 'RECOVERING')!;
    expect(recovering.reason).toMatch(/no heartbeat for .* within 2000 ms \(worker lost\)/);
    expect(recovered.attempt).toBe(2);

    // The job page's timeline: cause, when the failure was seen, the checkpoint used, how long until running again.
    const [recovery] = await waitFor(
      async () => {
        const list = await stack.client.listRecoveries(job.id);
        return list[0]?.status === 'RUNNING' && list;
      },
      10_000,
      'the recovery record to say RUNNING',
    );
    expect(recovery).toMatchObject({ attempt: 2, cause: recovering.reason, status: 'RUNNING' });
    // The checkpoint it restored is the last one completed before the kill, or one completed while the worker was dying.
    expect(recovery!.checkpointNumber).toBeGreaterThanOrEqual(lastCompleted.number);
    expect(Date.parse(recovery!.detectedAt) - killedAt).toBeGreaterThanOrEqual(1000);
    expect(recovery!.detectionMs).toBeGreaterThanOrEqual(2000);
    expect(recovery!.recoveryMs).not.toBeNull();
    expect(recovery!.keyGroupsRestored).toBeGreaterThan(0);

    const done = await waitForFinished(stack, job.id, 110_000);
    expect(done.attempt).toBe(2);

    await expectExactCounts('recovered_counts', settings);
  });

  it('a frozen worker comes back as a zombie of the old attempt and changes nothing that counts', async () => {
    const table = 'zombie_counts';
    // The first test killed a worker: the recovery needs one that is neither dead nor frozen.
    await stack.addWorker('worker-spare');
    const p = await stack.client.createPipeline({ name: `zombie-${stack.prefix}`, graph: graph(table) });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 500 });
    await waitForCheckpoint(stack, job.id);

    // Freeze (not kill) a worker running a sink subtask: its subtasks stay alive, holding what they had.
    const workers = await stack.client.listWorkers();
    const frozen = workers.find((w) => w.subtasks.some((s) => s.jobId === job.id && s.vertexId === 'count'))!;
    const child = stack.workers.find((w) => w.pid === frozen.pid)!;
    child.kill('SIGSTOP');
    try {
      await waitForRecovered(stack, job.id, 60_000);
    } finally {
      child.kill('SIGCONT');
    }

    // Everything an old attempt can still touch, written on purpose: its channels and its sink.
    const keys = redisKeys(stack.prefix);
    const writer = new ChannelWriter(withScripts(stack.redis), keys.channel(job.id, 1, 0, [0, 0], [0, 0]), defaultRuntimeSettings);
    for (let i = 0; i < 1000; i++) writer.push({ user: 'u1', item: 'zombie', amount: 1, ts: 0 }, 0);
    await writer.flush(true);
    const zombieSink = new PostgresSink(
      postgresSinkSettings.parse({ table, valueField: 'count' }),
      process.env.KEYFLOW_SINK_DATABASE_URL!,
      { jobId: job.id, vertexId: 'sink', attempt: 1, index: 0 },
      () => {},
    );
    try {
      zombieSink.process({ key: 'u1', count: 1_000_000 } as unknown as Rec);
      await expect(zombieSink.preCommit(1_000)).rejects.toBeInstanceOf(SinkFencedError);
      await expect(zombieSink.commit(1_000)).rejects.toBeInstanceOf(SinkFencedError);
    } finally {
      await zombieSink.close();
    }

    // The thawed worker's old subtasks end by themselves (fenced or canceled), without another recovery.
    await waitFor(
      async () => !(await stack.client.listWorkers()).some((w) => w.subtasks.some((s) => s.jobId === job.id && s.attempt === 1)),
      30_000,
      'the zombie subtasks to end',
    );
    const done = await waitForFinished(stack, job.id, 110_000);
    expect(done.attempt).toBe(2);

    await expectExactCounts(table, settings);
    expect(await sql(`SELECT attempt FROM keyflow_sink_fence WHERE job_id = '${job.id}'`)).toEqual([{ attempt: 2 }]);
    expect(await sql(`SELECT count(*)::int AS n FROM keyflow_sink_pending WHERE job_id = '${job.id}'`)).toEqual([{ n: 0 }]);
  });

  it('fails the job with the reason once its restarts are used up', async () => {
    // A table whose key column is an integer: every upsert of text keys fails, so the sink's subtask fails.
    await sql('CREATE TABLE broken_sink (key integer PRIMARY KEY, value jsonb, updated_at timestamptz)');
    const p = await stack.client.createPipeline({ name: `broken-${stack.prefix}`, graph: graph('broken_sink') });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 1000 });
    const failed = await waitForFailed(job.id);
    expect(failed.events.filter((e) => e.toState === 'RECOVERING')).toHaveLength(2);
    expect(failed.failureReason).toMatch(/gave up after 2 restarts/);
    expect(failed.failureReason).toMatch(/column "key" is of type integer/);
    // Two recoveries that never ran (the second superseded the first), then the failure the job gave up on.
    const recoveries = await stack.client.listRecoveries(job.id);
    expect(recoveries.map((r) => r.status)).toEqual(['FAILED', 'FAILED', 'SUPERSEDED']);
    expect(recoveries[0]!.reason).toMatch(/gave up after 2 restarts/);
  });

  it('keeps the restart budget across a restart of the control plane', async () => {
    await sql('CREATE TABLE broken_sink_2 (key integer PRIMARY KEY, value jsonb, updated_at timestamptz)');
    const p = await stack.client.createPipeline({ name: `broken-2-${stack.prefix}`, graph: graph('broken_sink_2') });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 1000 });
    await waitFor(async () => (await stack.client.getJob(job.id)).events.some((e) => e.toState === 'RECOVERING'), 60_000, 'the first recovery');
    // A new control plane takes the job up: it counts the restart the old one made, from the job's lifecycle.
    await stack.restartControl();
    const failed = await waitForFailed(job.id);
    expect(failed.events.filter((e) => e.toState === 'RECOVERING')).toHaveLength(2);
    expect(failed.failureReason).toMatch(/gave up after 2 restarts/);
  });
});

describe('recovery without heartbeats', () => {
  let stack: Stack;
  beforeAll(async () => {
    // Heartbeats would take a minute: BullMQ's stalled-job check on the surviving worker (every 1 s with a 2 s lock) finds the loss.
    stack = await startStack({ workers: 2, env: { WORKER_LOCK_MS: '2000', HEARTBEAT_TIMEOUT_MS: '60000', MAX_RESTARTS: '2' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('a killed worker’s stalled task jobs start the recovery, and every count stays exact', async () => {
    const p = await stack.client.createPipeline({ name: `stalled-${stack.prefix}`, graph: graph('stalled_counts') });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 500 });
    await waitForCheckpoint(stack, job.id);

    await killWorkerRunning(stack, job.id);

    const recovered = await waitForRecovered(stack, job.id, 30_000);
    expect(recovered.events.find((e) => e.toState === 'RECOVERING')!.reason).toMatch(/lost: .*stalled/);
    const done = await waitForFinished(stack, job.id, 110_000);
    expect(done.attempt).toBe(2);
    await expectExactCounts('stalled_counts', settings);
  });
});
