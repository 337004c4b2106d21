import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countPipeline, expectExactCounts, startStack, waitFor, waitForFinished, waitForRecovered, type Stack } from './harness.ts';
import { startTcpProxy, type TcpProxy } from './tcpProxy.ts';

const settings = { seed: 21, rate: 40_000, keys: 5_000, skew: 'zipf', total: 1_000_000, splits: 4 } as const;

// Postgres goes away for the control plane and the workers (they reach it through a proxy the test cuts);
// the test itself reads the results directly.
describe('Postgres unreachable for a while', () => {
  let stack: Stack;
  let proxy: TcpProxy;
  beforeAll(async () => {
    const direct = new URL(process.env.DATABASE_URL!);
    proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
    stack = await startStack({
      workers: 2,
      env: { DATABASE_URL: proxy.via(process.env.DATABASE_URL!), HEARTBEAT_TIMEOUT_MS: '2500', WORKER_LOCK_MS: '30000' },
    });
  });
  afterAll(async () => {
    await proxy?.restore().catch(() => {});
    await stack?.close();
    await proxy?.close();
  });

  const recordsCounted = (jobId: string) => stack.control.metrics.snapshot(jobId)?.vertices.count?.recordsIn ?? 0;

  it('checkpoints fail with the reason, processing goes on, and checkpoints succeed again when it returns', async () => {
    const p = await stack.client.createPipeline({ name: `outage-${stack.prefix}`, graph: countPipeline('outage_counts', settings) });
    const deployed = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 500, checkpointTimeoutMs: 3000, tolerableCheckpointFailures: 100 });
    await waitFor(async () => (await stack.client.listCheckpoints(deployed.id)).some((c) => c.status === 'COMPLETED'), 60_000, 'a completed checkpoint');
    const job = stack.control.jobs.active.get(deployed.id)!;

    await proxy.cut();
    const cutAt = Date.now();
    const countedAtCut = await waitFor(() => recordsCounted(job.id), 10_000, 'records counted');
    await waitFor(() => job.checkpointFailures >= 3, 30_000, 'three checkpoints to fail in a row');
    // A checkpoint cannot even be started (its row cannot be written), or it fails on the way.
    expect(job.lastCheckpointFailure).toMatch(/^(could not be started|failed): .*\S/);
    console.log(`while Postgres is away: ${job.lastCheckpointFailure}`);
    // The records keep flowing while no checkpoint can be taken, and nothing restarts.
    await waitFor(() => recordsCounted(job.id) > countedAtCut + 20_000, 30_000, 'records counted while Postgres is away');
    expect(job.state).toBe('RUNNING');
    expect(job.attempt).toBe(1);

    await proxy.restore();
    await waitFor(
      async () => (await stack.client.listCheckpoints(job.id).catch(() => [])).some((c) => c.status === 'COMPLETED' && Date.parse(c.triggeredAt) > cutAt),
      60_000,
      'a checkpoint to complete after Postgres returned',
    );
    expect(job.checkpointFailures).toBe(0);
    // A checkpoint that was in flight when Postgres went away is not left PENDING.
    expect((await stack.client.listCheckpoints(job.id)).filter((c) => c.status === 'PENDING' && Date.parse(c.triggeredAt) < cutAt)).toEqual([]);

    const done = await waitForFinished(stack, job.id, 120_000);
    expect(done.attempt).toBe(1);
    expect(done.events.map((e) => e.toState)).not.toContain('RECOVERING');
    await expectExactCounts('outage_counts', settings);
  });

  it('past its tolerable checkpoint failures the job fails over once Postgres is back, and the counts stay exact', async () => {
    const p = await stack.client.createPipeline({ name: `failover-${stack.prefix}`, graph: countPipeline('failover_counts', settings) });
    const deployed = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 500, checkpointTimeoutMs: 3000, tolerableCheckpointFailures: 1 });
    await waitFor(async () => (await stack.client.listCheckpoints(deployed.id)).some((c) => c.status === 'COMPLETED'), 60_000, 'a completed checkpoint');
    const job = stack.control.jobs.active.get(deployed.id)!;

    await proxy.cut();
    try {
      await waitFor(() => job.failoverDue, 30_000, 'the job to be due to fail over');
      expect(job.failoverDue).toMatch(/2 checkpoints failed in a row \(1 tolerated\)/);
      // A fail-over needs Postgres (it restores from there): the liveness checks (every 250 ms) try it and
      // give up for now, and the job runs on as it is, on its first attempt.
      await new Promise((r) => setTimeout(r, 1500));
      expect(job.state).toBe('RUNNING');
      expect(job.attempt).toBe(1);
    } finally {
      await proxy.restore();
    }

    const recovered = await waitForRecovered(stack, job.id, 60_000);
    expect(recovered.events.find((e) => e.toState === 'RECOVERING')!.reason).toMatch(/checkpoints failed in a row/);
    const done = await waitForFinished(stack, job.id, 120_000);
    expect(done.attempt).toBe(2);
    await expectExactCounts('failover_counts', settings);
  });
});
