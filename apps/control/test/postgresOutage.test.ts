import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countPipeline,
  expectExactCounts,
  startStack,
  waitFor,
  waitForCheckpoint,
  waitForFinished,
  waitForRecovered,
  type Stack,
} from './harness.ts';
import { startPostgresProxy, type TcpProxy } from './tcpProxy.ts';

const settings = { seed: 21, rate: 40_000, keys: 5_000, skew: 'zipf', total: 1_000_000, splits: 4 } as const;

// Postgres goes away for the control plane and the workers (they reach it through a proxy the test cuts);
// the test itself reads the results directly.
describe('Postgres unreachable for a while', () => {
  let stack: Stack;
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await startPostgresProxy();
    stack = await startStack({
      workers: 2,
      env: {
        DATABASE_URL: proxy.via(process.env.DATABASE_URL!),
        KEYFLOW_SINK_DATABASE_URL: proxy.via(process.env.KEYFLOW_SINK_DATABASE_URL!),
        HEARTBEAT_TIMEOUT_MS: '2500',
        WORKER_LOCK_MS: '30000',
      },
    });
  });
  afterAll(async () => {
    await proxy?.restore().catch(() => {});
    await stack?.close();
    await proxy?.close();
  });

  const recordsCounted = (jobId: string) => stack.control.metrics.snapshot(jobId)?.vertices.count?.recordsIn ?? 0;

  it('the control plane gives up its lease and stands by; processing goes on; back, it takes the job up as it runs', async () => {
    const p = await stack.client.createPipeline({ name: `outage-${stack.prefix}`, graph: countPipeline('outage_counts', settings) });
    const deployed = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 500, checkpointTimeoutMs: 3000 });
    await waitForCheckpoint(stack, deployed.id);

    await proxy.cut();
    const cutAt = Date.now();
    // Without Postgres it cannot know that no other control plane took the lease: it stops coordinating at once.
    await waitFor(() => !stack.control.jobs.coordinating, 5_000, 'the control plane to stand by');
    expect(stack.control.jobs.active.size).toBe(0);
    const countedAtCut = recordsCounted(deployed.id);
    // The records keep flowing while no checkpoint can be taken, and nothing restarts.
    await waitFor(() => recordsCounted(deployed.id) > countedAtCut + 20_000, 30_000, 'records counted while Postgres is away');

    await proxy.restore();
    await waitFor(() => stack.control.jobs.coordinating, 15_000, 'the control plane to take the lease again');
    await waitFor(
      async () =>
        (await stack.client.listCheckpoints(deployed.id).catch(() => [])).some((c) => c.status === 'COMPLETED' && Date.parse(c.triggeredAt) > cutAt),
      60_000,
      'a checkpoint to complete after Postgres returned',
    );
    // A checkpoint that was in flight when Postgres went away is not left PENDING.
    expect((await stack.client.listCheckpoints(deployed.id)).filter((c) => c.status === 'PENDING' && Date.parse(c.triggeredAt) < cutAt)).toEqual([]);

    const done = await waitForFinished(stack, deployed.id, 120_000);
    expect(done.attempt).toBe(1);
    expect(done.events.map((e) => e.toState)).not.toContain('RECOVERING');
    await expectExactCounts('outage_counts', settings);
  });
});

// Only the workers lose Postgres: the control plane coordinates on, and sees the checkpoints fail.
describe('workers without Postgres', () => {
  let stack: Stack;
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await startPostgresProxy();
    stack = await startStack({
      workers: 2,
      env: { HEARTBEAT_TIMEOUT_MS: '2500', WORKER_LOCK_MS: '30000', MAX_RESTARTS: '20' },
      workerEnv: { DATABASE_URL: proxy.via(process.env.DATABASE_URL!), KEYFLOW_SINK_DATABASE_URL: proxy.via(process.env.KEYFLOW_SINK_DATABASE_URL!) },
    });
  });
  afterAll(async () => {
    await proxy?.restore().catch(() => {});
    await stack?.close();
    await proxy?.close();
  });

  it('checkpoints fail with the reason; past what the job tolerates it fails over, and the counts stay exact', async () => {
    const p = await stack.client.createPipeline({ name: `failover-${stack.prefix}`, graph: countPipeline('failover_counts', settings) });
    const deployed = await stack.client.deployJob({
      pipelineId: p.id,
      checkpointIntervalMs: 500,
      checkpointTimeoutMs: 3000,
      tolerableCheckpointFailures: 1,
    });
    await waitForCheckpoint(stack, deployed.id);
    const job = stack.control.jobs.active.get(deployed.id)!;

    await proxy.cut();
    try {
      // The subtasks cannot write their parts: they decline, and each decline fails a checkpoint in a row.
      const recovering = await waitFor(
        async () => (await stack.client.getJob(deployed.id)).events.find((e) => e.toState === 'RECOVERING'),
        30_000,
        'the job to fail over',
      );
      expect(recovering.reason).toMatch(/2 checkpoints failed in a row \(1 tolerated\); the last failed: declined by .*writing its part failed/);
      expect(job.lastCheckpointFailure).toMatch(/declined by/);
    } finally {
      await proxy.restore();
    }
    // Its new attempts could not open without Postgres either; one that can runs, from the last completed checkpoint.
    await waitForRecovered(stack, deployed.id, 90_000);
    const done = await waitForFinished(stack, deployed.id, 120_000);
    expect(done.attempt).toBeGreaterThanOrEqual(2);
    await expectExactCounts('failover_counts', settings);
  });
});
