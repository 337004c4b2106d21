import { decodeValue, EventGenerator } from '@keyflow/core';
import type { PrismaClient } from '@keyflow/db';
import { expect } from 'vitest';
import { tableCounts, waitFor, type GeneratorSettings, type Stack } from './harness.ts';

/**
 * What the rescale tests do to a running job and what they check after each step: it converged to what was asked
 * for, and it makes progress (records flow, a checkpoint completes); at the end, exactly-once output.
 */

const UNSETTLED = new Set(['QUEUED', 'WAITING_FOR_SLOTS', 'ALIGNING']);

/** Asks for a parallelism; returns the scaling event's id. */
export async function requestRescale(stack: Stack, jobId: string, vertexId: string, parallelism: number): Promise<number> {
  const { scalingEvents } = await stack.client.rescaleJob(jobId, { parallelism: { [vertexId]: parallelism } });
  return scalingEvents[0]!.id;
}

/**
 * Waits until the job runs at the parallelism it was last asked for, with no scaling event left to run; fails at
 * once if the job ends. Returns the job.
 */
export async function converged(stack: Stack, jobId: string, vertexId: string, parallelism: number, timeoutMs = 90_000) {
  return waitFor(
    async () => {
      const j = await stack.client.getJob(jobId);
      if (['FAILED', 'CANCELED', 'FINISHED', 'STOPPED'].includes(j.state)) throw new Error(`job ${j.state}: ${j.failureReason}`);
      if (j.state !== 'RUNNING' || j.plan.vertices[vertexId]!.parallelism !== parallelism || j.desiredParallelism[vertexId] !== parallelism)
        return false;
      const open = (await stack.client.listScalingEvents(jobId)).filter((e) => UNSETTLED.has(e.status));
      return open.length === 0 && j;
    },
    timeoutMs,
    `job ${jobId} to run ${vertexId} at parallelism ${parallelism} with nothing queued`,
  );
}

/**
 * Progress, not only a healthy-looking state: records reach `vertexId` and a checkpoint triggered after now
 * completes, within `timeoutMs`.
 */
export async function expectProgress(stack: Stack, jobId: string, vertexId: string, timeoutMs = 30_000): Promise<void> {
  const start = await stack.client.getJob(jobId);
  const recordsBefore = start.metrics?.vertices[vertexId]?.recordsIn ?? 0;
  const since = Date.now();
  await waitFor(
    async () => {
      const j = await stack.client.getJob(jobId);
      if (j.state === 'FAILED' || j.state === 'CANCELED') throw new Error(`job ${j.state}: ${j.failureReason}`);
      // A bounded source that ran out before the test's steps did: the test's rate is too high for them.
      if (j.state === 'FINISHED') throw new Error(`job ${jobId} finished while the test still wanted to see it make progress`);
      const flowing = (j.metrics?.vertices[vertexId]?.recordsIn ?? 0) > recordsBefore;
      const checkpointed = j.latestCheckpoints.some((c) => c.status === 'COMPLETED' && Date.parse(c.triggeredAt) >= since);
      return flowing && checkpointed;
    },
    timeoutMs,
    `job ${jobId} to make progress (records into ${vertexId} and a completed checkpoint)`,
  );
}

/** A generator's source offsets (per split) in a checkpoint. */
export async function checkpointOffsets(prisma: PrismaClient, checkpointId: number, vertexId = 'events'): Promise<Map<number, number>> {
  const chunks = await prisma.stateChunk.findMany({ where: { checkpointId, vertexId, scope: 'OPERATOR' }, select: { part: true, data: true } });
  return new Map(chunks.map((c) => [c.part, decodeValue<{ offset: number }>(c.data).offset]));
}

/** Counts per user of the events a generator emitted below `offsets` (per split), computed without the engine. */
export function countsAtOffsets(settings: GeneratorSettings, offsets: ReadonlyMap<number, number>): Map<string, number> {
  const gen = new EventGenerator({ zipfExponent: 1, ...settings });
  const counts = new Map<string, number>();
  for (const [split, end] of offsets)
    for (let o = 0; o < end; o++) {
      const user = gen.eventAt(gen.indexOf(split, o)).user;
      counts.set(user, (counts.get(user) ?? 0) + 1);
    }
  return counts;
}

/** Stops the job with a savepoint and checks the sink table holds exactly the counts of the events before it. */
export async function stopAndExpectExact(stack: Stack, jobId: string, table: string, settings: GeneratorSettings): Promise<void> {
  await stack.client.stopJob(jobId);
  await waitFor(
    async () => {
      const j = await stack.client.getJob(jobId);
      if (j.state === 'FAILED' || j.state === 'CANCELED') throw new Error(`job ${j.state}: ${j.failureReason}`);
      return j.state === 'STOPPED';
    },
    60_000,
    `job ${jobId} to stop with a savepoint`,
  );
  const savepoint = await stack.prisma.checkpoint.findFirstOrThrow({
    where: { jobId, kind: 'SAVEPOINT', status: 'COMPLETED' },
    orderBy: { number: 'desc' },
  });
  const expected = countsAtOffsets(settings, await checkpointOffsets(stack.prisma, savepoint.id));
  const actual = await tableCounts(table);
  const wrong = [...expected].filter(([k, n]) => actual.get(k) !== n).map(([key, n]) => ({ key, expected: n, actual: actual.get(key) }));
  expect(wrong.slice(0, 10), `${wrong.length} keys have a wrong count`).toEqual([]);
  expect([...actual.keys()].filter((k) => !expected.has(k))).toEqual([]);
}

interface Sample {
  readAt: number;
  values: Map<string, number>;
}

/**
 * Exactly-once output, not only final state: samples a sink table while a job runs, then checks that every key's
 * visible value is one it had at a completed checkpoint, never ahead of the last checkpoint completed before the
 * sample was read, and never going back. (An upserting at-least-once sink ends with the same final table, but
 * fails this.) Needs the job's completed checkpoints with their state: run the stack with a large retention.
 */
export class OutputSampler {
  private readonly samples: Sample[] = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(
    private readonly table: string,
    everyMs = 250,
  ) {
    this.loop = (async () => {
      while (this.running) {
        const values = await tableCounts(this.table).catch(() => undefined);
        if (values) this.samples.push({ readAt: Date.now(), values });
        await new Promise((r) => setTimeout(r, everyMs));
      }
    })();
  }

  get count(): number {
    return this.samples.length;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Every violation found, in words (empty: the output was exactly-once as far as the samples show). */
  async violations(prisma: PrismaClient, jobId: string, settings: GeneratorSettings): Promise<string[]> {
    const checkpoints = await prisma.checkpoint.findMany({
      where: { jobId, status: 'COMPLETED' },
      orderBy: { completedAt: 'asc' },
      select: { id: true, number: true, completedAt: true },
    });
    // Each key's value at each completed checkpoint, in the order they completed (offsets only grow between them).
    const gen = new EventGenerator({ zipfExponent: 1, ...settings });
    const counts = new Map<string, number>();
    const history = new Map<string, { at: number; value: number }[]>();
    const done = new Map<number, number>();
    for (const c of checkpoints) {
      const offsets = await checkpointOffsets(prisma, c.id);
      for (const [split, end] of offsets) {
        for (let o = done.get(split) ?? 0; o < end; o++) {
          const user = gen.eventAt(gen.indexOf(split, o)).user;
          counts.set(user, (counts.get(user) ?? 0) + 1);
        }
        done.set(split, Math.max(done.get(split) ?? 0, end));
      }
      for (const [user, n] of counts) {
        const h = history.get(user) ?? [];
        if (h.at(-1)?.value !== n) h.push({ at: c.completedAt!.getTime(), value: n });
        history.set(user, h);
      }
    }
    const out: string[] = [];
    const last = new Map<string, number>();
    for (const s of this.samples) {
      for (const [key, v] of s.values) {
        const allowed = (history.get(key) ?? []).filter((h) => h.at <= s.readAt);
        if (!allowed.some((h) => h.value === v))
          out.push(`${key} = ${v} at ${new Date(s.readAt).toISOString()}: no completed checkpoint had it (${allowed.at(-1)?.value ?? 'none'} then)`);
        const before = last.get(key);
        if (before !== undefined && v < before) out.push(`${key} went back from ${before} to ${v} at ${new Date(s.readAt).toISOString()}`);
        last.set(key, v);
      }
      for (const key of last.keys()) if (!s.values.has(key)) out.push(`${key} vanished at ${new Date(s.readAt).toISOString()}`);
    }
    return out;
  }
}
