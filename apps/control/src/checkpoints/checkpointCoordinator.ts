import type { CheckpointFailures as CheckpointFailuresDto, Checkpoint as CheckpointDto } from '@keyflow/api';
import { Prisma, type Checkpoint, type CheckpointKind, type PrismaClient } from '@keyflow/db';
import type { Logger, RescaleSpec, WorkerEvent } from '@keyflow/runtime';
import { operatorSubtasks, subtaskKey, type ActiveJob, type PendingCheckpoint } from '../jobs/activeJob.ts';
import { borrowedCheckpoints } from './borrowed.ts';
import type { Emitter } from '../http/emitter.ts';
import type { Scheduler } from '../cluster/scheduler.ts';

type AckEvent = Extract<WorkerEvent, { type: 'ack' }>;

export class CheckpointInFlight extends Error {
  constructor(jobId: string, n: number) {
    super(`checkpoint ${n} of job ${jobId} is still in flight`);
  }
}

export function checkpointDto(c: Checkpoint, acknowledged: number): CheckpointDto {
  return {
    id: c.id,
    jobId: c.jobId,
    number: c.number,
    attempt: c.attempt,
    kind: c.kind,
    status: c.status,
    acknowledged,
    totalSubtasks: c.totalSubtasks,
    triggeredAt: c.triggeredAt.toISOString(),
    completedAt: c.completedAt?.toISOString() ?? null,
    durationMs: c.durationMs,
    bytes: Number(c.bytes),
    alignmentMs: c.alignmentMs,
    failureReason: c.failureReason,
  };
}

/**
 * Aligned checkpoints (DESIGN §5): triggers checkpoint n at the sources on the job's interval or on demand,
 * collects every subtask's acknowledgement, completes n in one transaction, applies retention, and fails n
 * with the reason when it times out or is declined.
 */
export class CheckpointCoordinator {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly scheduler: Scheduler,
    private readonly emitter: Emitter,
    private readonly retention: number,
    private readonly logger: Logger,
  ) {}

  /** Jobs whose periodic trigger is queued on their actor: one at a time each. */
  private readonly ticking = new WeakSet<ActiveJob>();

  /** Triggers periodic checkpoints that are due, each in a step of its job's actor; one that cannot start (Postgres unreachable) counts as failed. */
  tick(jobs: Iterable<ActiveJob>): void {
    const due = (job: ActiveJob) =>
      job.state === 'RUNNING' &&
      !job.pending &&
      !job.rescaling &&
      !job.failoverDue &&
      job.finished.size === 0 &&
      Date.now() - job.lastCheckpointAt >= job.checkpointIntervalMs;
    for (const job of jobs) {
      if (!due(job) || this.ticking.has(job)) continue;
      this.ticking.add(job);
      void job.actor
        .run(() => (due(job) ? this.trigger(job, 'PERIODIC') : undefined))
        .catch((err) => {
          if (job.pending || err instanceof CheckpointInFlight) return;
          job.lastCheckpointAt = Date.now();
          this.countFailure(job, `could not be started: ${briefError(err)}`);
        })
        .finally(() => this.ticking.delete(job));
    }
  }

  /** Starts checkpoint n of a job (in a step of its actor): its row, then the trigger at the sources. */
  async trigger(job: ActiveJob, kind: CheckpointKind, opts: { stopAfter?: boolean; rescale?: RescaleSpec } = {}): Promise<PendingCheckpoint> {
    if (job.pending) throw new CheckpointInFlight(job.id, job.pending.number);
    return this.start(job, kind, opts);
  }

  private async start(job: ActiveJob, kind: CheckpointKind, opts: { stopAfter?: boolean; rescale?: RescaleSpec }): Promise<PendingCheckpoint> {
    // A checkpoint that failed while Postgres was unreachable is still PENDING there: none is in flight now.
    await this.prisma.checkpoint.updateMany({
      where: { jobId: job.id, status: 'PENDING' },
      data: { status: 'FAILED', failureReason: 'failed while its outcome could not be recorded (Postgres unreachable)' },
    });
    // Numbers come from the job's counter, not from the newest row: subtasks ignore a barrier whose number they
    // saw before, so the number of a savepoint deleted by hand must not come again.
    const totalSubtasks = operatorSubtasks(job);
    const row = await this.prisma.$transaction(async (tx) => {
      // (Raw: a checkpoint is no change of the job that should move its updatedAt.)
      const [{ number }] = await tx.$queryRaw<[{ number: number }]>`
        UPDATE "Job" SET "lastCheckpointNumber" = "lastCheckpointNumber" + 1 WHERE "id" = ${job.id}::uuid RETURNING "lastCheckpointNumber" AS number`;
      return tx.checkpoint.create({ data: { jobId: job.id, number, attempt: job.attempt, kind, totalSubtasks } });
    });
    const pending: PendingCheckpoint = {
      id: row.id,
      number: row.number,
      kind,
      triggeredAt: row.triggeredAt.getTime(),
      waiting: new Set(job.subtasks),
      acknowledged: 0,
      totalSubtasks,
      bytes: 0,
      alignmentMs: 0,
      settle: [],
      ...(opts.rescale && { rescale: opts.rescale }),
      timer: setTimeout(() => void job.actor.run(() => this.fail(job, pending, timedOut(job, pending))).catch(() => {}), job.checkpointTimeoutMs),
    };
    job.pending = pending;
    this.emitter.emit(job.id, 'checkpoint:triggered', {
      jobId: job.id,
      checkpointId: row.id,
      number: row.number,
      kind,
      totalSubtasks,
      at: row.triggeredAt.toISOString(),
    });
    await this.scheduler.command(job.id, {
      type: 'trigger',
      attempt: job.attempt,
      checkpoint: row.number,
      checkpointId: row.id,
      kind,
      ...(opts.stopAfter && { stopAfter: true }),
      ...(opts.rescale && { rescale: opts.rescale }),
    });
    return pending;
  }

  /** Waits until a pending checkpoint completes or fails. */
  settled(pending: PendingCheckpoint): Promise<{ ok: true } | { ok: false; reason: string }> {
    return new Promise((resolve) => {
      pending.settle.push(resolve);
    });
  }

  async onAck(job: ActiveJob, e: AckEvent): Promise<void> {
    const pending = job.pending;
    if (!pending || pending.id !== e.checkpointId || e.attempt !== job.attempt) return;
    const key = subtaskKey(e.vertexId, e.index);
    if (!pending.waiting.delete(key)) return;
    const chain = job.chains.find((c) => c.id === e.vertexId);
    const acks = (chain?.vertices ?? []).map((v) => ({
      checkpointId: e.checkpointId,
      vertexId: v.id,
      subtaskIndex: e.index,
      alignmentMs: e.alignmentMs,
      syncMs: e.syncMs,
      asyncMs: e.asyncMs,
      bytes: BigInt(e.vertices[v.id]?.bytes ?? 0),
    }));
    try {
      await this.prisma.checkpointAck.createMany({ data: acks, skipDuplicates: true });
    } catch (err) {
      return this.fail(job, pending, `recording ${key}'s acknowledgement failed: ${briefError(err)}`);
    }
    const ackedAt = new Date().toISOString();
    for (const a of acks) {
      pending.acknowledged++;
      pending.bytes += Number(a.bytes);
      this.emitter.emit(job.id, 'checkpoint:ack', {
        jobId: job.id,
        checkpointId: pending.id,
        number: pending.number,
        vertexId: a.vertexId,
        subtaskIndex: a.subtaskIndex,
        ackedAt,
        alignmentMs: a.alignmentMs,
        syncMs: a.syncMs,
        asyncMs: a.asyncMs,
        bytes: Number(a.bytes),
        acknowledged: pending.acknowledged,
        totalSubtasks: pending.totalSubtasks,
      });
    }
    pending.alignmentMs = Math.max(pending.alignmentMs, e.alignmentMs);
    if (pending.waiting.size === 0) await this.complete(job, pending);
  }

  async onDecline(job: ActiveJob, checkpointId: number, who: string, reason: string): Promise<void> {
    if (job.pending?.id === checkpointId) await this.fail(job, job.pending, `declined by ${who}: ${reason}`);
  }

  /** A subtask finished; a checkpoint it has not acknowledged can no longer complete. */
  async onFinished(job: ActiveJob, key: string): Promise<void> {
    if (job.pending?.waiting.has(key)) await this.fail(job, job.pending, `${key} finished before acknowledging`);
  }

  /** Abandons the pending checkpoint (its attempt is gone); that is no failure of checkpointing. */
  async abandon(job: ActiveJob, reason: string): Promise<void> {
    if (job.pending) await this.fail(job, job.pending, reason, { counts: false });
  }

  /**
   * One more checkpoint failed in a row (Flink's tolerable checkpoint failures): past what the job tolerates it
   * is due to fail over, which the job manager does as soon as it can.
   */
  private countFailure(job: ActiveJob, reason: string): void {
    job.checkpointFailures++;
    job.lastCheckpointFailure = reason;
    this.logger.warn({ jobId: job.id, inARow: job.checkpointFailures, tolerated: job.tolerableCheckpointFailures, reason }, 'checkpoint failed');
    if (job.checkpointFailures > job.tolerableCheckpointFailures && !job.failoverDue)
      job.failoverDue = `${job.checkpointFailures} checkpoints failed in a row (${job.tolerableCheckpointFailures} tolerated); the last ${reason}`;
    this.emitter.emit(job.id, 'checkpoint:failures', checkpointFailures(job));
  }

  /**
   * Retention: the newest completed checkpoints of a job keep their state; savepoints are never let go by it. The
   * rows of the others stay as history (DISCARDED), as Flink's history keeps them. One that another job started from,
   * and would restart from, stays until that job has a checkpoint of its own.
   */
  private async retain(tx: Pick<PrismaClient, 'checkpoint' | 'stateChunk' | 'job' | '$queryRaw'>, jobId: string): Promise<void> {
    const older = await tx.checkpoint.findMany({
      where: { jobId, status: 'COMPLETED', kind: { not: 'SAVEPOINT' } },
      orderBy: { number: 'desc' },
      skip: this.retention,
      select: { id: true },
    });
    if (older.length === 0) return;
    // Locked before the question which a live job started from: a deploy from one of them holds its row until its job
    // exists (see JobManager.deploy), so the answer below sees that job, or the deploy sees the checkpoint discarded.
    await tx.$queryRaw`SELECT id FROM "Checkpoint" WHERE id IN (${Prisma.join(older.map((o) => o.id))}) FOR UPDATE`;
    const borrowed = await borrowedCheckpoints(
      tx,
      older.map((o) => o.id),
    );
    const ids = older.filter((o) => !borrowed.has(o.id)).map((o) => o.id);
    if (ids.length === 0) return;
    await tx.stateChunk.deleteMany({ where: { checkpointId: { in: ids } } });
    await tx.checkpoint.updateMany({ where: { id: { in: ids } }, data: { status: 'DISCARDED' } });
  }

  private async complete(job: ActiveJob, pending: PendingCheckpoint): Promise<void> {
    clearTimeout(pending.timer);
    job.pending = undefined;
    job.lastCheckpointAt = Date.now();
    const completedAt = new Date();
    let row: Checkpoint;
    try {
      row = await this.prisma.$transaction(async (tx) => {
        const done = await tx.checkpoint.update({
          where: { id: pending.id },
          data: {
            status: 'COMPLETED',
            completedAt,
            durationMs: completedAt.getTime() - pending.triggeredAt,
            bytes: BigInt(pending.bytes),
            alignmentMs: pending.alignmentMs,
          },
        });
        await this.retain(tx, job.id);
        // The checkpoint this job started from (another job's) may have been kept for it alone: now it has its own.
        if (job.restoredFromJobId) await this.retain(tx, job.restoredFromJobId);
        return done;
      });
    } catch (err) {
      // Not recorded as completed, so not completed: no sink may commit it, and no recovery will restore it.
      job.pending = pending;
      return this.fail(job, pending, `completing it failed: ${briefError(err)}`);
    }
    if (pending.rescale) job.lastRescale = pending.rescale;
    if (job.checkpointFailures > 0) {
      job.checkpointFailures = 0;
      this.emitter.emit(job.id, 'checkpoint:failures', checkpointFailures(job));
    }
    this.emitter.emit(job.id, 'checkpoint:completed', checkpointDto(row, pending.acknowledged));
    await this.scheduler.command(job.id, {
      type: 'complete',
      attempt: job.attempt,
      checkpoint: pending.number,
      checkpointId: pending.id,
      ...(pending.rescale && { rescale: pending.rescale }),
    });
    for (const settle of pending.settle) settle({ ok: true });
  }

  private async fail(job: ActiveJob, pending: PendingCheckpoint, reason: string, opts: { counts?: boolean } = {}): Promise<void> {
    if (job.pending !== pending) return;
    clearTimeout(pending.timer);
    job.pending = undefined;
    job.lastCheckpointAt = Date.now();
    const durationMs = Date.now() - pending.triggeredAt;
    const row = await this.prisma
      .$transaction(async (tx) => {
        await tx.stateChunk.deleteMany({ where: { checkpointId: pending.id } });
        return tx.checkpoint.update({ where: { id: pending.id }, data: { status: 'FAILED', failureReason: reason, durationMs } });
      })
      // Postgres unreachable: the row stays PENDING until the next checkpoint's trigger marks it failed.
      .catch(() => undefined);
    const dto = row
      ? checkpointDto(row, pending.acknowledged)
      : {
          id: pending.id,
          jobId: job.id,
          number: pending.number,
          attempt: job.attempt,
          kind: pending.kind,
          status: 'FAILED' as const,
          acknowledged: pending.acknowledged,
          totalSubtasks: pending.totalSubtasks,
          triggeredAt: new Date(pending.triggeredAt).toISOString(),
          completedAt: null,
          durationMs,
          bytes: pending.bytes,
          alignmentMs: pending.alignmentMs,
          failureReason: reason,
        };
    this.emitter.emit(job.id, 'checkpoint:failed', dto);
    if (opts.counts !== false) this.countFailure(job, `failed: ${reason}`);
    await this.scheduler.command(job.id, { type: 'abort', attempt: job.attempt, checkpoint: pending.number, reason });
    for (const settle of pending.settle) settle({ ok: false, reason });
  }
}

/** Why a checkpoint timed out: the subtasks that did not acknowledge it (and only those), and who holds the job up. */
function timedOut(job: ActiveJob, pending: PendingCheckpoint): string {
  const chained = (key: string) => {
    const [chainId, index] = key.split('#');
    const rest = job.chains.find((c) => c.id === chainId)?.vertices.slice(1) ?? [];
    return rest.length ? `${key} (with ${rest.map((v) => `${v.id}#${index}`).join(', ')})` : key;
  };
  const held = job.stall ? `; held up by ${job.stall.subtasks.map((s) => `${s.subtask}, which ${s.reason}`).join('; ')}` : '';
  return `timed out after ${job.checkpointTimeoutMs} ms; not acknowledged by ${[...pending.waiting].map(chained).join(', ')}${held}`;
}

/** An error's gist on one line: Prisma's messages start with where the call was made and end with what went wrong. */
export function briefError(err: unknown): string {
  const lines = (err instanceof Error ? err.message : String(err)).split('\n').filter((l) => l.trim());
  return lines.at(-1)?.trim() ?? 'unknown error';
}

/** A job's checkpoint failures in a row, as the API and the `checkpoint:failures` event give them. */
export function checkpointFailures(job: ActiveJob): CheckpointFailuresDto {
  return {
    jobId: job.id,
    consecutive: job.checkpointFailures,
    tolerable: job.tolerableCheckpointFailures,
    lastReason: job.lastCheckpointFailure ?? null,
    at: new Date().toISOString(),
  };
}
