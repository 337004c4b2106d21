import { KeyedStateBackend } from '@keyflow/core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countPipeline,
  expectExactCounts,
  killWorkerRunning,
  startStack,
  tableCounts,
  waitFor,
  waitForCheckpoint,
  waitForFinished,
  waitForRecovered,
  waitForState,
  type Stack,
} from './harness.ts';

const settings = { seed: 31, rate: 50_000, keys: 8_000, skew: 'zipf', total: 900_000, splits: 8 } as const;
/** The same events, slower and without an end in sight: a job that runs on while a test works on another. */
const unbounded = { ...settings, rate: 5_000, total: 50_000_000 };

describe('savepoints', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ workers: 2, slots: 6, env: { CHECKPOINT_RETENTION: '1' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('outlive retention, stop a job, and start it again at another parallelism with exact counts', async () => {
    const p = await stack.client.createPipeline({ name: `savepoints-${stack.prefix}`, graph: countPipeline('savepoint_counts', settings) });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 300 });
    await waitForState(stack, job.id, 'RUNNING');

    const manual = await stack.client.triggerSavepoint(job.id);
    expect(manual.kind).toBe('SAVEPOINT');
    // Periodic checkpoints come and go (retention keeps one); the savepoint stays.
    await waitFor(
      async () =>
        (await stack.client.listCheckpoints(job.id)).filter((c) => c.kind === 'PERIODIC' && c.status === 'COMPLETED' && c.number > manual.number + 2)
          .length > 0,
      60_000,
      'periodic checkpoints after the savepoint',
    );
    const kept = await stack.client.listCheckpoints(job.id);
    expect(kept.filter((c) => c.kind === 'PERIODIC' && c.status === 'COMPLETED')).toHaveLength(1);
    expect(kept.find((c) => c.id === manual.id)?.status).toBe('COMPLETED');

    await stack.client.stopJob(job.id);
    const stopped = await waitForState(stack, job.id, 'STOPPED', 60_000);
    const final = (await stack.client.listCheckpoints(job.id)).find((c) => c.kind === 'SAVEPOINT' && c.id !== manual.id && c.status === 'COMPLETED')!;
    expect(stopped.events.at(-1)!.reason).toBe(`stopped with savepoint ${final.number}`);
    // The stopped attempt can commit nothing more, and nothing it pre-committed is left behind.
    const db = new pg.Client({ connectionString: process.env.KEYFLOW_SINK_DATABASE_URL });
    await db.connect();
    try {
      expect((await db.query('SELECT attempt FROM keyflow_sink_fence WHERE job_id = $1', [job.id])).rows).toEqual([{ attempt: 2 }]);
      expect((await db.query('SELECT count(*)::int AS n FROM keyflow_sink_pending WHERE job_id = $1', [job.id])).rows).toEqual([{ n: 0 }]);
    } finally {
      await db.end();
    }

    // The first savepoint is deleted by hand; any other kind of checkpoint is refused.
    await stack.client.deleteSavepoint(manual.id);
    expect((await stack.client.listCheckpoints(job.id)).some((c) => c.id === manual.id)).toBe(false);
    const periodic = (await stack.client.listCheckpoints(job.id)).find((c) => c.kind === 'PERIODIC')!;
    await expect(stack.client.deleteSavepoint(periodic.id)).rejects.toThrow(/only savepoints are deleted by hand/);

    // A parallelism the graph's rules refuse (a forward edge between unequal ends) is answered 422.
    await expect(stack.client.deployJob({ pipelineId: p.id, restoreFromCheckpointId: final.id, parallelism: { count: 3 } })).rejects.toThrow(
      /forward/,
    );
    await expect(stack.client.deployJob({ pipelineId: p.id, restoreFromCheckpointId: final.id, parallelism: { nope: 3 } })).rejects.toThrow(
      /no operator 'nope'/,
    );

    // Started again from the stop's savepoint with count and its sink at 3: the state spreads over three subtasks.
    const resumed = await stack.client.deployJob({
      pipelineId: p.id,
      restoreFromCheckpointId: final.id,
      parallelism: { count: 3, sink: 3 },
      checkpointIntervalMs: 500,
    });
    expect(resumed.plan.vertices.count!.parallelism).toBe(3);
    // The new job names where it started as the user knows it: the stopped job's savepoint, by its number there.
    expect(resumed).toMatchObject({ restoredFromId: final.id, restoredFrom: { jobId: job.id, number: final.number } });
    expect(resumed.plan.vertices.count!.maxParallelism).toBe(stopped.plan.vertices.count!.maxParallelism);
    const done = await waitForFinished(stack, resumed.id, 120_000);
    expect(done.events.find((e) => e.toState === 'RUNNING')!.reason).toMatch(/restored \d+ key groups/);

    await expectExactCounts('savepoint_counts', settings);
  });

  it("keeps a checkpoint another job started from out of its own job's retention until that job has one of its own", async () => {
    // A runs on and checkpoints often (retention keeps one); B starts from one of A's checkpoints and takes none.
    const p = await stack.client.createPipeline({
      name: `borrowed-${stack.prefix}`,
      graph: countPipeline('borrowed_counts', unbounded),
    });
    const a = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 300 });
    let b: { id: string } | undefined;
    try {
      await waitForState(stack, a.id, 'RUNNING');
      const periodic = async () => (await stack.client.listCheckpoints(a.id)).filter((c) => c.kind === 'PERIODIC');
      const from = await waitFor(
        async () => (await periodic()).find((c) => c.status === 'COMPLETED' && c.number >= 2),
        30_000,
        "A's second checkpoint",
      );
      b = await stack.client.deployJob({ pipelineId: p.id, restoreFromCheckpointId: from.id, checkpointIntervalMs: 3_600_000 });
      await waitForState(stack, b.id, 'RUNNING', 60_000);
      await waitFor(
        async () => (await periodic()).some((c) => c.status === 'COMPLETED' && c.number > from.number + 2),
        30_000,
        "A's later checkpoints",
      );
      expect((await periodic()).find((c) => c.id === from.id)?.status).toBe('COMPLETED');

      // B fails before it has a checkpoint of its own: it starts again from A's, with the state A had there.
      await killWorkerRunning(stack, b.id, 'count');
      await stack.addWorker();
      const recovered = await waitForRecovered(stack, b.id, 90_000);
      const restart = recovered.events.filter((e) => e.fromState === 'RECOVERING' && e.toState === 'RUNNING').at(-1)!;
      expect(restart.reason).toMatch(/restored [1-9]\d* key groups/);
      expect((await stack.client.listRecoveries(b.id)).at(-1)).toMatchObject({ checkpointId: from.id, checkpointNumber: from.number });

      // Once B has a checkpoint of its own, A's is let go, even though A has ended and takes no more checkpoints.
      await stack.client.cancelJob(a.id);
      await waitForState(stack, a.id, 'CANCELED');
      expect((await periodic()).find((c) => c.id === from.id)?.status).toBe('COMPLETED');
      await waitForCheckpoint(stack, b.id, 30_000, (await stack.client.triggerCheckpoint(b.id)).id);
      expect((await periodic()).find((c) => c.id === from.id)?.status).toBe('DISCARDED');
      expect(await stack.prisma.stateChunk.count({ where: { checkpointId: from.id } })).toBe(0);
    } finally {
      for (const id of [a.id, b?.id]) if (id) await stack.client.cancelJob(id).catch(() => undefined);
    }
  });

  it('fails a job that would recover from nothing: no checkpoint of its own, and the one it started from gone', async () => {
    const p = await stack.client.createPipeline({
      name: `orphan-${stack.prefix}`,
      graph: countPipeline('orphan_counts', unbounded),
    });
    const a = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 3_600_000 });
    let b: { id: string } | undefined;
    try {
      await waitForState(stack, a.id, 'RUNNING');
      const from = await waitForCheckpoint(stack, a.id, 30_000, (await stack.client.triggerCheckpoint(a.id)).id);
      b = await stack.client.deployJob({ pipelineId: p.id, restoreFromCheckpointId: from.id, checkpointIntervalMs: 3_600_000 });
      await waitForState(stack, b.id, 'RUNNING', 60_000);
      // As a version before this rule's retention left it: discarded, its state deleted.
      await stack.prisma.stateChunk.deleteMany({ where: { checkpointId: from.id } });
      await stack.prisma.checkpoint.update({ where: { id: from.id }, data: { status: 'DISCARDED' } });

      await killWorkerRunning(stack, b.id, 'count');
      await stack.addWorker();
      const failed = await waitForState(stack, b.id, 'FAILED', 60_000);
      expect(failed.failureReason).toContain(
        `cannot recover: it has no checkpoint of its own, and the state of checkpoint #${from.number} of job ${a.id}, which it started from, is gone (DISCARDED); restarting would start from nothing`,
      );
      expect(failed.events.some((e) => e.toState === 'RECOVERING')).toBe(false);
    } finally {
      for (const id of [a.id, b?.id]) if (id) await stack.client.cancelJob(id).catch(() => undefined);
    }
  });

  it('refuses a start from a checkpoint that retention discards while the start is under way', async () => {
    const p = await stack.client.createPipeline({ name: `race-${stack.prefix}`, graph: countPipeline('race_counts', unbounded) });
    const a = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 3_600_000 });
    try {
      await waitForState(stack, a.id, 'RUNNING');
      const from = await waitForCheckpoint(stack, a.id, 30_000, (await stack.client.triggerCheckpoint(a.id)).id);
      // Retention, in the middle of its transaction: it locked the row and is about to discard the checkpoint.
      let discard!: () => void;
      const go = new Promise<void>((resolve) => (discard = resolve));
      let locked!: () => void;
      const isLocked = new Promise<void>((resolve) => (locked = resolve));
      const retention = stack.prisma.$transaction(
        async (tx) => {
          await tx.$queryRaw`SELECT id FROM "Checkpoint" WHERE id = ${from.id} FOR UPDATE`;
          locked();
          await go;
          await tx.stateChunk.deleteMany({ where: { checkpointId: from.id } });
          await tx.checkpoint.update({ where: { id: from.id }, data: { status: 'DISCARDED' } });
        },
        { timeout: 60_000 },
      );
      await isLocked;
      const start = stack.client.deployJob({ pipelineId: p.id, restoreFromCheckpointId: from.id }).then(
        (job) => job,
        (err: Error) => err,
      );
      // The start waits for the row (it read it as COMPLETED before, and started a job from nothing).
      await waitFor(
        async () =>
          (
            await stack.prisma.$queryRaw<{ n: number }[]>`
              SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FOR SHARE%'`
          )[0]!.n > 0,
        10_000,
        'the start to wait on the checkpoint it starts from',
      );
      discard();
      await retention;
      const result = await start;
      expect(result).toBeInstanceOf(Error);
      expect((result as Error).message).toContain(
        `checkpoint #${from.number} of job ${a.id.slice(0, 8)} is DISCARDED, not COMPLETED: retention let its state go`,
      );
      expect(await stack.prisma.job.count({ where: { restoredFromId: from.id } })).toBe(0);
    } finally {
      const started = await stack.prisma.job.findMany({ where: { restoredFromJobId: a.id }, select: { id: true } });
      for (const { id } of [a, ...started]) await stack.client.cancelJob(id).catch(() => undefined);
    }
  });

  it('retention waits for a start under way from a checkpoint it would discard, then keeps it for that job', async () => {
    const p = await stack.client.createPipeline({ name: `race-retention-${stack.prefix}`, graph: countPipeline('race_retention_counts', unbounded) });
    const a = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 3_600_000 });
    let started: string | undefined;
    try {
      await waitForState(stack, a.id, 'RUNNING');
      const from = await waitForCheckpoint(stack, a.id, 30_000, (await stack.client.triggerCheckpoint(a.id)).id);
      // A start from it, in the middle of its transaction: it holds the row and has not made its job yet.
      let create!: () => void;
      const go = new Promise<void>((resolve) => (create = resolve));
      let locked!: () => void;
      const isLocked = new Promise<void>((resolve) => (locked = resolve));
      const row = await stack.prisma.job.findUniqueOrThrow({ where: { id: a.id } });
      const start = stack.prisma.$transaction(
        async (tx) => {
          await tx.$queryRaw`SELECT id FROM "Checkpoint" WHERE id = ${from.id} FOR SHARE`;
          locked();
          await go;
          const job = await tx.job.create({
            data: {
              pipelineId: row.pipelineId,
              pipelineVersionId: row.pipelineVersionId,
              plan: row.plan as object,
              restoredFromId: from.id,
              restoredFromJobId: a.id,
              restoredFromNumber: from.number,
            },
          });
          started = job.id;
        },
        { timeout: 60_000 },
      );
      await isLocked;
      // A's next checkpoint completes; retention (one kept) would discard the first, and waits for the start.
      const next = await stack.client.triggerCheckpoint(a.id);
      await waitFor(
        async () =>
          (
            await stack.prisma.$queryRaw<{ n: number }[]>`
              SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%"Checkpoint"%' AND query NOT LIKE '%FOR SHARE%'`
          )[0]!.n > 0,
        30_000,
        'retention to wait on the checkpoint a start holds',
      );
      create();
      await start;
      await waitForCheckpoint(stack, a.id, 30_000, next.id);
      expect((await stack.client.listCheckpoints(a.id)).find((c) => c.id === from.id)?.status).toBe('COMPLETED');
      expect(await stack.prisma.stateChunk.count({ where: { checkpointId: from.id } })).toBeGreaterThan(0);
    } finally {
      // The started job was made by hand, not deployed: no worker runs it.
      if (started) await stack.prisma.job.delete({ where: { id: started } });
      await stack.client.cancelJob(a.id).catch(() => undefined);
    }
  });

  it('refuses to delete a savepoint a running job started from until that job has a checkpoint of its own', async () => {
    const p = await stack.client.createPipeline({
      name: `kept-savepoint-${stack.prefix}`,
      graph: countPipeline('kept_savepoint_counts', unbounded),
    });
    const a = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 3_600_000 });
    let b: { id: string } | undefined;
    try {
      await waitForState(stack, a.id, 'RUNNING');
      const savepoint = await waitForCheckpoint(stack, a.id, 30_000, (await stack.client.triggerSavepoint(a.id)).id);
      b = await stack.client.deployJob({ pipelineId: p.id, restoreFromCheckpointId: savepoint.id, checkpointIntervalMs: 3_600_000 });
      await waitForState(stack, b.id, 'RUNNING', 60_000);
      // The audit trail names the savepoint as the dashboard lists it, by its number within A.
      const deployed = (await stack.client.getJob(b.id)).audit.find((e) => e.action === 'job.deploy');
      expect(deployed?.details).toMatchObject({ restoreFromCheckpointId: savepoint.id, fromCheckpoint: { jobId: a.id, number: savepoint.number } });
      await expect(stack.client.deleteSavepoint(savepoint.id)).rejects.toMatchObject({
        status: 409,
        message: expect.stringContaining(`savepoint #${savepoint.number} is where job ${b.id} started`),
      });
      // B's own checkpoint is what it restarts from now: the savepoint may go.
      await waitForCheckpoint(stack, b.id, 30_000, (await stack.client.triggerCheckpoint(b.id)).id);
      await stack.client.deleteSavepoint(savepoint.id);
      expect((await stack.client.listCheckpoints(a.id)).some((c) => c.id === savepoint.id)).toBe(false);
    } finally {
      for (const id of [a.id, b?.id]) if (id) await stack.client.cancelJob(id).catch(() => undefined);
    }
  });

  it('never gives a checkpoint the number of a savepoint deleted before it', async () => {
    const p = await stack.client.createPipeline({ name: `numbers-${stack.prefix}`, graph: countPipeline('numbers_counts', settings) });
    // No periodic checkpoint comes between: the deleted savepoint is the newest.
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 3_600_000 });
    await waitForState(stack, job.id, 'RUNNING');
    const completed = (id: number) => waitForCheckpoint(stack, job.id, 30_000, id);

    const savepoint = await completed((await stack.client.triggerSavepoint(job.id)).id);
    await stack.client.deleteSavepoint(savepoint.id);
    const next = await stack.client.triggerCheckpoint(job.id);
    expect(next.number).toBe(savepoint.number + 1);
    // Its barrier is news to every subtask, so it completes (a reused number would be ignored and time out).
    expect((await completed(next.id)).acknowledged).toBe(next.totalSubtasks);
    await stack.client.cancelJob(job.id);
  });

  it('cancel leaves the exactly-once sink at the last completed checkpoint: covered output committed, the rest discarded', async () => {
    const p = await stack.client.createPipeline({ name: `cancel-${stack.prefix}`, graph: countPipeline('canceled_counts', settings) });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 700 });
    await waitFor(
      async () => (await stack.client.listCheckpoints(job.id)).some((c) => c.status === 'COMPLETED' && c.number >= 2),
      60_000,
      'a second completed checkpoint',
    );
    await stack.client.cancelJob(job.id);

    const db = new pg.Client({ connectionString: process.env.KEYFLOW_SINK_DATABASE_URL });
    await db.connect();
    try {
      const pending = await db.query('SELECT count(*)::int AS n FROM keyflow_sink_pending WHERE job_id = $1', [job.id]);
      expect(pending.rows).toEqual([{ n: 0 }]);
      // The canceled attempt is fenced off: a subtask of it still stopping can commit nothing more.
      expect((await db.query('SELECT attempt FROM keyflow_sink_fence WHERE job_id = $1', [job.id])).rows).toEqual([{ attempt: 2 }]);
    } finally {
      await db.end();
    }
    // The table holds exactly the counts of the last completed checkpoint's state: no more, no less.
    const last = (await stack.client.listCheckpoints(job.id)).find((c) => c.status === 'COMPLETED')!;
    const chunks = await stack.prisma.stateChunk.findMany({ where: { checkpointId: last.id, vertexId: 'count', scope: 'KEYED' } });
    const backend = new KeyedStateBackend((await stack.client.getJob(job.id)).plan.vertices.count!.maxParallelism);
    for (const c of chunks) backend.restore(c.part, c.data);
    const count = backend.valueState<number>('count');
    const table = await tableCounts('canceled_counts');
    expect(table.size).toBe(backend.keyCount());
    const wrong = [...table].filter(([key, n]) => {
      backend.setCurrentKey(key);
      return count.value() !== n;
    });
    expect(wrong.slice(0, 5)).toEqual([]);
  });
});

describe('a start whose checkpoint is gone by the time its subtasks run', () => {
  let stack: Stack;
  beforeAll(async () => {
    // One worker of three slots: one count job fills it, so a second waits for slots.
    stack = await startStack({ workers: 1, slots: 3 });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('fails the job, naming the checkpoint, rather than run it from part of its state or none', async () => {
    const p = await stack.client.createPipeline({ name: `gone-${stack.prefix}`, graph: countPipeline('gone_counts', unbounded) });
    const a = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 3_600_000 });
    let b: { id: string } | undefined;
    try {
      await waitForState(stack, a.id, 'RUNNING');
      const from = await waitForCheckpoint(stack, a.id, 30_000, (await stack.client.triggerCheckpoint(a.id)).id);
      b = await stack.client.deployJob({ pipelineId: p.id, restoreFromCheckpointId: from.id, checkpointIntervalMs: 3_600_000 });
      // B waits for A's slots. Meanwhile its checkpoint goes, as a version before the start held its row let it.
      await stack.prisma.stateChunk.deleteMany({ where: { checkpointId: from.id } });
      await stack.prisma.checkpoint.update({ where: { id: from.id }, data: { status: 'DISCARDED' } });
      await stack.client.cancelJob(a.id);

      const failed = await waitFor(
        async () => {
          const j = await stack.client.getJob(b!.id);
          if (j.state === 'RUNNING') throw new Error(`B runs: ${j.events.at(-1)!.reason}`);
          return j.state === 'FAILED' && j;
        },
        60_000,
        'B to fail',
      );
      expect(failed.failureReason).toContain(`the state of checkpoint #${from.number} of job ${a.id}, which it started from, is gone (DISCARDED)`);
      // The subtask that found it gone says so, and the job never ran.
      expect(failed.failureReason).toContain(
        `failed: cannot restore checkpoint #${from.number} of job ${a.id.slice(0, 8)}: it is DISCARDED, its state gone`,
      );
      expect(failed.events.map((e) => e.toState)).toEqual(['CREATED', 'SCHEDULING', 'FAILED']);
    } finally {
      for (const id of [a.id, b?.id]) if (id) await stack.client.cancelJob(id).catch(() => undefined);
    }
  });
});
