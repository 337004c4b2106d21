import { createKeyflowClient } from '@keyflow/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControl, type ControlHandle } from '../src/control.ts';
import { controlEnv } from '../src/env.ts';
import {
  countPipeline,
  expectExactCounts,
  startStack,
  TEST_AUTH_SECRET,
  waitFor,
  waitForCheckpoint,
  waitForFinished,
  waitForRecovered,
  type Stack,
} from './harness.ts';
import { startPostgresProxy, type TcpProxy } from './tcpProxy.ts';

const settings = { seed: 11, rate: 60_000, keys: 5_000, skew: 'zipf', total: 900_000, splits: 4 } as const;

describe('control plane', () => {
  let stack: Stack;
  const extra: ControlHandle[] = [];
  const env = { HEARTBEAT_TIMEOUT_MS: '2500', WORKER_LOCK_MS: '30000' };
  beforeAll(async () => {
    stack = await startStack({ workers: 2, env });
  });
  afterAll(async () => {
    for (const c of extra) await c.close();
    await stack?.close();
  });
  const secondControl = async () => {
    const c = await startControl(
      controlEnv.parse({ KEYFLOW_AUTH_SECRET: TEST_AUTH_SECRET, ...process.env, ...env, KEYFLOW_PREFIX: stack.prefix, CONTROL_PORT: '0' }),
    );
    extra.push(c);
    return c;
  };

  it('a second control plane stands by while one holds the lease, and takes the running job over without restarting it', async () => {
    const p = await stack.client.createPipeline({ name: `lease-${stack.prefix}`, graph: countPipeline('lease_counts', settings) });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 500 });
    await waitForCheckpoint(stack, job.id);

    const standby = await secondControl();
    const standbyClient = createKeyflowClient(standby.url, { token: stack.token });
    expect(standby.jobs.coordinating).toBe(false);
    expect(standby.jobs.active.size).toBe(0);
    // Readiness says which one coordinates; both are live.
    expect((await fetch(`${standby.url}/readyz`)).status).toBe(503);
    expect((await fetch(`${stack.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${standby.url}/livez`)).status).toBe(200);
    // It answers reads, and refuses changes with a reason instead of coordinating alongside the other.
    expect((await standbyClient.getJob(job.id)).state).toBe('RUNNING');
    await expect(standbyClient.triggerCheckpoint(job.id)).rejects.toThrow(/standing by/);

    await stack.control.close();
    const tookOverAt = Date.now();
    await waitFor(() => standby.jobs.coordinating, 15_000, 'the standby to take the lease');
    // The subtasks ran on meanwhile: the job is taken up as it is, not recovered.
    const after = await waitFor(
      async () => (await standbyClient.listCheckpoints(job.id)).find((c) => c.status === 'COMPLETED' && Date.parse(c.triggeredAt) > tookOverAt),
      30_000,
      'a checkpoint completed under the new control plane',
    );
    expect(after.number).toBeGreaterThan(1);
    const done = await waitForFinished({ client: standbyClient }, job.id, 120_000);
    expect(done.attempt).toBe(1);
    expect(done.events.map((e) => e.toState)).not.toContain('RECOVERING');
    await expectExactCounts('lease_counts', settings);
  });
});

describe('a control plane cut off from Postgres', () => {
  let stack: Stack;
  let proxy: TcpProxy;
  let standby: ControlHandle | undefined;
  const env = { HEARTBEAT_TIMEOUT_MS: '2500', WORKER_LOCK_MS: '30000' };
  beforeAll(async () => {
    proxy = await startPostgresProxy();
    // The first control plane reaches Postgres through the proxy; the workers and the second one directly.
    stack = await startStack({
      workers: 2,
      env: {
        ...env,
        DATABASE_URL: proxy.via(process.env.DATABASE_URL!),
        KEYFLOW_SINK_DATABASE_URL: proxy.via(process.env.KEYFLOW_SINK_DATABASE_URL!),
      },
      workerEnv: { DATABASE_URL: process.env.DATABASE_URL!, KEYFLOW_SINK_DATABASE_URL: process.env.KEYFLOW_SINK_DATABASE_URL! },
    });
  });
  afterAll(async () => {
    await proxy?.restore().catch(() => {});
    await standby?.close();
    await stack?.close();
    await proxy?.close();
  });

  it('stops coordinating before another takes over, and the other takes the job up as it runs', async () => {
    const p = await stack.client.createPipeline({ name: `cutoff-${stack.prefix}`, graph: countPipeline('cutoff_counts', settings) });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 500 });
    await waitForCheckpoint(stack, job.id);
    standby = await startControl(
      controlEnv.parse({ KEYFLOW_AUTH_SECRET: TEST_AUTH_SECRET, ...process.env, ...env, KEYFLOW_PREFIX: stack.prefix, CONTROL_PORT: '0' }),
    );
    expect(standby.jobs.coordinating).toBe(false);

    // Both control planes run in this process: watch both flags every millisecond.
    let cutOffStopped: number | undefined;
    let otherTookOver: number | undefined;
    let both = 0;
    const cutOff = stack.control;
    const other = standby;
    const watch = setInterval(() => {
      if (cutOffStopped === undefined && !cutOff.jobs.coordinating) cutOffStopped = performance.now();
      if (otherTookOver === undefined && other.jobs.coordinating) otherTookOver = performance.now();
      if (cutOff.jobs.coordinating && other.jobs.coordinating) both++;
    }, 1);
    try {
      await proxy.cut();
      await waitFor(() => otherTookOver !== undefined, 15_000, 'the other control plane to take the lease');
    } finally {
      clearInterval(watch);
    }
    expect(cutOffStopped).toBeDefined();
    expect(cutOffStopped!).toBeLessThanOrEqual(otherTookOver!);
    expect(both).toBe(0);

    const otherClient = createKeyflowClient(other.url, { token: stack.token });
    const done = await waitForFinished({ client: otherClient }, job.id, 120_000);
    expect(done.attempt).toBe(1);
    await expectExactCounts('cutoff_counts', settings);
  });
});

describe('Redis that loses its data', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ workers: 2, env: { HEARTBEAT_TIMEOUT_MS: '2500', WORKER_LOCK_MS: '30000' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('every active job recovers from its last checkpoint in Postgres, and the counts stay exact', async () => {
    const p = await stack.client.createPipeline({ name: `emptied-${stack.prefix}`, graph: countPipeline('emptied_counts', settings) });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 500 });
    await waitForCheckpoint(stack, job.id);

    // All of this Keyflow's keys gone at once, as after a restart without persistence (other tests share this Redis).
    const keys = await stack.redis.keys(`${stack.prefix}:*`);
    await stack.redis.unlink(...keys);

    const recovered = await waitForRecovered(stack, job.id, 60_000);
    expect(recovered.events.find((e) => e.toState === 'RECOVERING')!.reason).toMatch(/Redis restarted without its data/);
    const [recovery] = await stack.client.listRecoveries(job.id);
    expect(recovery!.checkpointNumber).toBeGreaterThanOrEqual(1);

    const done = await waitForFinished(stack, job.id, 120_000);
    expect(done.attempt).toBeGreaterThanOrEqual(2);
    await expectExactCounts('emptied_counts', settings);
  });
});
