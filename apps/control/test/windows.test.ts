import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killWorkerRunning, startStack, waitFor, waitForCheckpoint, waitForFinished, waitForRecovered, waitForState, type Stack } from './harness.ts';
import { converged, expectProgress, requestRescale } from './rescaleDriver.ts';
import { expectedLate, expectedWindows, expectExactWindows, windowPipeline, type TimedGenerator } from './windowResults.ts';

// 1,000,000 events over 10,000 keys, up to 2 s out of order, 100 s of event time, and every 1,000th event 30 s late
// (beyond any window and the watermark delay: surely late); KEYFLOW_WINDOW_EVENTS for more or fewer.
const TOTAL = Number(process.env.KEYFLOW_WINDOW_EVENTS ?? 1_000_000);
const settings: TimedGenerator = {
  seed: 5,
  // Slow enough that the rescale steps happen before the source runs out (about 35 s).
  rate: 30_000,
  keys: 10_000,
  skew: 'uniform',
  total: TOTAL,
  splits: 8,
  msPerEvent: 0.1,
  outOfOrderness: '2s',
  watermarkDelay: '2s',
  lateEvery: 1000,
  lateBy: '30s',
};
// Each key has an event about every 100 ms of event time: a 200 ms gap closes a session every seven events or so.
const windows = { tumble: { size: '10s' }, session: { gap: '200ms' } };

describe('event-time windows over out-of-order events, exact through failures, live rescales and savepoints', () => {
  let stack: Stack;
  let tumbling: Map<string, number>;
  let sessions: Map<string, number>;
  beforeAll(async () => {
    // Heartbeats find a killed worker long before its task locks (30 s) expire; one worker alone can run the job.
    stack = await startStack({ workers: 2, slots: 8, env: { WORKER_LOCK_MS: '30000', HEARTBEAT_TIMEOUT_MS: '2000' } });
    tumbling = expectedWindows(settings, { size: 10_000 });
    sessions = expectedWindows(settings, { gap: 200 });
  });
  afterAll(async () => {
    await stack?.close();
  });

  const deploy = async (
    prefix: string,
    opts: { parallelism?: Record<string, number>; restoreFromCheckpointId?: number; pipelineId?: string } = {},
  ) => {
    const pipelineId =
      opts.pipelineId ??
      (await stack.client.createPipeline({ name: `${prefix}-${stack.prefix}`, graph: windowPipeline(prefix, settings, windows) })).id;
    const { pipelineId: _, ...rest } = opts;
    const job = await stack.client.deployJob({ pipelineId, checkpointIntervalMs: 500, ...rest });
    return { job, pipelineId };
  };
  /**
   * Every window exact, and the late output took the late events: exactly as many when no record was processed twice
   * (`replayed` false), at least as many after a recovery (its replay counts the late ones again).
   */
  const expectExact = async (prefix: string, jobIds: string[], replayed = false) => {
    // With a watermark delay as long as the disorder, only the generator's late events are late.
    const late = expectedLate(settings);
    expect(late).toBeGreaterThan(0);
    for (const vertex of ['tumble', 'session']) {
      let counted = 0;
      for (const id of jobIds) counted += (await stack.client.getJob(id)).metrics?.vertices[vertex]?.lateRecords ?? 0;
      if (replayed) expect(counted, `late records of ${vertex}`).toBeGreaterThanOrEqual(late);
      else expect(counted, `late records of ${vertex}`).toBe(late);
    }
    await expectExactWindows(`${prefix}_tumble`, tumbling);
    await expectExactWindows(`${prefix}_session`, sessions);
  };

  it('a worker killed (SIGKILL) mid-run: the job recovers and every tumbling and session window is exact', async () => {
    const { job } = await deploy('wkill');
    await waitForCheckpoint(stack, job.id);
    // Windows have fired by now, so the recovery has window state, timers and emitted results to get right.
    await waitFor(async () => ((await stack.client.getJob(job.id)).metrics?.vertices.tumble?.recordsOut ?? 0) > 0, 60_000, 'a first window result');
    await killWorkerRunning(stack, job.id, 'tumble');
    const recovered = await waitForRecovered(stack, job.id, 60_000);
    expect(recovered.attempt).toBe(2);
    await waitForFinished(stack, job.id, 180_000);
    await expectExact('wkill', [job.id], true);
  });

  it('live rescales of both window operators (2→3→1→2 and 2→1→3) change no result', async () => {
    const { job } = await deploy('wscale');
    await waitForCheckpoint(stack, job.id);
    const steps: [string, number][] = [
      ['tumble', 3],
      ['session', 1],
      ['tumble', 1],
      ['session', 3],
      ['tumble', 2],
    ];
    for (const [vertex, p] of steps) {
      await requestRescale(stack, job.id, vertex, p);
      await converged(stack, job.id, vertex, p);
      await expectProgress(stack, job.id, vertex);
    }
    await waitForFinished(stack, job.id, 180_000);
    await expectExact('wscale', [job.id]);
  });

  it('a stop with a savepoint, then a resume at another parallelism, changes no result', async () => {
    const { job, pipelineId } = await deploy('wsave');
    await waitFor(async () => ((await stack.client.getJob(job.id)).metrics?.vertices.session?.recordsOut ?? 0) > 0, 60_000, 'a first session result');
    await stack.client.stopJob(job.id);
    await waitForState(stack, job.id, 'STOPPED', 60_000);
    const savepoint = await stack.prisma.checkpoint.findFirstOrThrow({ where: { jobId: job.id, kind: 'SAVEPOINT', status: 'COMPLETED' } });
    const { job: resumed } = await deploy('wsave', {
      pipelineId,
      restoreFromCheckpointId: savepoint.id,
      parallelism: { tumble: 3, tumbleSink: 3, session: 1, sessionSink: 1 },
    });
    await waitForFinished(stack, resumed.id, 180_000);
    await expectExact('wsave', [job.id, resumed.id]);
  });
});
