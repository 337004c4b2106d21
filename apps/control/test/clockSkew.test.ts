import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countPipeline, expectExactCounts, startStack, waitFor, waitForFinished, waitForRecovered, waitForState, type Stack } from './harness.ts';

const settings = { seed: 17, rate: 50_000, keys: 5_000, skew: 'zipf', total: 700_000, splits: 4 } as const;
const SHIFT_MS = 5000;
const HEARTBEAT_TIMEOUT_MS = 1500;
const shiftClock = fileURLToPath(new URL('./fixtures/shiftClock.mjs', import.meta.url));
/** A worker process whose host clock is off by `shiftMs`, as a worker on another machine may be. */
const shifted = (shiftMs: number) => ({
  env: { KEYFLOW_TEST_CLOCK_SHIFT_MS: String(shiftMs), WORKER_SLOTS: '2' },
  nodeArgs: ['--import', shiftClock],
});

describe('workers whose clocks disagree with the control plane', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ workers: 0, env: { HEARTBEAT_TIMEOUT_MS: String(HEARTBEAT_TIMEOUT_MS), WORKER_LOCK_MS: '30000', MAX_RESTARTS: '3' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it(`are neither declared lost (clock ${SHIFT_MS / 1000} s behind) nor missed when killed (clock ${SHIFT_MS / 1000} s ahead)`, async () => {
    const behind = await stack.addWorker('behind', shifted(-SHIFT_MS));
    const ahead = await stack.addWorker('ahead', shifted(SHIFT_MS));
    const p = await stack.client.createPipeline({ name: `clock-skew-${stack.prefix}`, graph: countPipeline('clock_skew_counts', settings) });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 300 });
    await waitForState(stack, job.id, 'RUNNING');

    // Three subtasks on two slots each: both workers run some. Judged by two clocks, the worker behind looked silent
    // for 5 s at the first look, more than the heartbeat timeout: the job recovered at once, again and again.
    const placed = await stack.client.listWorkers();
    expect(
      placed
        .filter((w) => w.subtasks.some((s) => s.jobId === job.id))
        .map((w) => w.id)
        .sort(),
    ).toEqual(['ahead', 'behind']);
    await waitFor(
      async () => (await stack.client.listCheckpoints(job.id)).some((c) => c.status === 'COMPLETED' && c.number >= 4),
      30_000,
      'checkpoint 4 to complete',
    );
    const steady = await stack.client.getJob(job.id);
    expect(steady.state).toBe('RUNNING');
    expect(steady.attempt).toBe(1);
    expect(await stack.client.listRecoveries(job.id)).toEqual([]);
    for (const w of placed) expect(w.heartbeatAgeMs).toBeLessThan(HEARTBEAT_TIMEOUT_MS);

    // Room for the recovery, with an honest clock; then the worker ahead dies. Judged by two clocks, its last beat
    // looked 5 s younger than it was, and the loss was seen only after timeout + 5 s.
    await stack.addWorker('spare', { env: { WORKER_SLOTS: '4' } });
    const killedAt = Date.now();
    ahead.kill('SIGKILL');
    const recovered = await waitForRecovered(stack, job.id, 60_000);
    const [recovery] = await stack.client.listRecoveries(job.id);
    expect(recovery!.cause).toMatch(new RegExp(`no heartbeat for .* within ${HEARTBEAT_TIMEOUT_MS} ms \\(worker lost\\)`));
    const seenAfterMs = Date.parse(recovery!.detectedAt) - killedAt;
    // The heartbeat timeout, the liveness check's period (250 ms) and room for a loaded machine; well short of 5 s more.
    expect(seenAfterMs, `the loss was seen ${seenAfterMs} ms after the kill`).toBeLessThan(HEARTBEAT_TIMEOUT_MS + SHIFT_MS - 1000);
    expect(recovery!.detectionMs!).toBeGreaterThanOrEqual(HEARTBEAT_TIMEOUT_MS - 600);

    const done = await waitForFinished(stack, job.id, 90_000);
    // One recovery, for the worker that died; the one behind was never taken for lost.
    expect(done.attempt).toBe(recovered.attempt);
    expect(done.attempt).toBe(2);
    expect(behind.exitCode).toBeNull();
    await expectExactCounts('clock_skew_counts', settings);
  });
});
