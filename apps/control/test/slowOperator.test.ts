import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, waitFor, waitForCheckpoint, waitForState, type Stack } from './harness.ts';

/** A user operator that spends 0.4 ms of CPU on each record (see the fixture). */
const BUSY = fileURLToPath(new URL('./fixtures/busyOperator.ts', import.meta.url));
const STALL_WARN_MS = 1500;

/**
 * A slow operator makes its subtask slow, never unresponsive, at the default settings: one read of its input brings
 * several batches of 4,096 records, seconds of work at 0.4 ms a record. Worked through in one go, the subtask reported
 * nothing meanwhile and was shown as stuck ("has not reported"). And the barrier queued behind the records was taken
 * for a stall ("waits for the barrier", "waits for busy#0 to read its output"), so the job failed over past the
 * stall timeout, again and again. Behind a full channel, that barrier waited about a minute of the operator's work.
 */
describe('a slow user operator', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      workers: 1,
      slots: 4,
      env: { KEYFLOW_OPERATORS: BUSY, STALL_WARN_MS: String(STALL_WARN_MS) },
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('behind a keyed channel: reported on while it works, never shown as stuck; it makes progress and completes checkpoints', async () => {
    const pipeline = await stack.client.createPipeline({
      name: `busy-${stack.prefix}`,
      graph: {
        vertices: [
          { id: 'events', type: 'generator', parallelism: 1, settings: { seed: 2, rate: 0, keys: 1000, skew: 'uniform', splits: 4 } },
          { id: 'busy', type: 'testBusy', parallelism: 1, settings: { micros: 400 } },
          { id: 'sink', type: 'blackhole', parallelism: 1 },
        ],
        edges: [
          { from: 'events', to: 'busy', partitioning: 'hash', key: 'user' },
          { from: 'busy', to: 'sink', partitioning: 'forward' },
        ],
      },
    });
    const job = await stack.client.deployJob({ pipelineId: pipeline.id, checkpointIntervalMs: 2000 });
    // Canceled however the test ends: the run's later files share the database, and a control plane without this
    // operator cannot take a job of it up.
    try {
      const first = await waitForCheckpoint(stack, job.id, 60_000);
      const busyIn = async () => (await stack.client.getJob(job.id)).metrics?.vertices.busy?.recordsIn ?? 0;

      // Over 20 s (three reads' worth of work and more): every look at the job finds it running, with no stall that
      // says a subtask went silent, and the busy operator's count rises from one 2 s to the next.
      const stuck: string[] = [];
      const seen: number[] = [];
      const shares: { busy: number; eventsBusy: number; eventsBackpressure: number }[] = [];
      const end = Date.now() + 20_000;
      while (Date.now() < end) {
        const detail = await stack.client.getJob(job.id);
        expect(detail.state).toBe('RUNNING');
        expect(detail.attempt).toBe(1);
        for (const s of detail.stall?.subtasks ?? []) if (s.reason.startsWith('has not reported')) stuck.push(`${s.subtask} ${s.reason}`);
        seen.push(detail.metrics?.vertices.busy?.recordsIn ?? 0);
        const v = detail.metrics?.vertices;
        if (v?.busy && v.events) shares.push({ busy: v.busy.busy, eventsBusy: v.events.busy, eventsBackpressure: v.events.backpressure });
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(stuck).toEqual([]);
      // The metrics name the operator that limits the job, as Flink's busy and backpressure do: the slow operator's
      // subtask is busy nearly all the time, and the source ahead of it waits on its full channel, not busy.
      const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      expect(shares.length).toBeGreaterThan(40);
      expect(median(shares.map((s) => s.busy))).toBeGreaterThan(0.9);
      expect(median(shares.map((s) => s.eventsBackpressure))).toBeGreaterThan(0.5);
      expect(median(shares.map((s) => s.eventsBusy))).toBeLessThan(0.5);
      // Metrics come once a second: in every 2 s of looks (8 looks) the count rose.
      for (let i = 8; i < seen.length; i += 8) expect(seen[i]!, `records in by the ${i}th look`).toBeGreaterThan(seen[i - 8]!);
      // It completed checkpoints meanwhile (their barriers wait behind the channel's records, seconds of work).
      const later = await waitFor(
        async () => (await stack.client.listCheckpoints(job.id)).find((c) => c.status === 'COMPLETED' && c.id > first.id),
        30_000,
        'a later checkpoint to complete',
      );
      expect(later.id).toBeGreaterThan(first.id);
      // At the default bound (32 batches of 4,096 records), a barrier behind a full channel waited about 65 s of this
      // operator's work, past the checkpoint timeout. The channel is debloated to about a second of it.
      expect(later.durationMs).toBeLessThan(20_000);
      expect(await busyIn()).toBeGreaterThan(seen[0]!);
    } finally {
      await stack.client.cancelJob(job.id);
      await waitForState(stack, job.id, 'CANCELED');
    }
  }, 180_000);
});
