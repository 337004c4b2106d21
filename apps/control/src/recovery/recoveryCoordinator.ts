import { planDownToDesired } from '@keyflow/core';
import type { PrismaClient } from '@keyflow/db';
import type { Logger } from '@keyflow/runtime';
import type { CheckpointCoordinator } from '../checkpoints/checkpointCoordinator.ts';
import type { Scheduler } from '../cluster/scheduler.ts';
import { adoptPlan, type ActiveJob } from '../jobs/activeJob.ts';
import type { JobManager } from '../jobs/jobManager.ts';
import type { MetricsAggregator } from '../observability/metrics.ts';
import type { RecoveryLog } from './recoveryLog.ts';

export interface RecoveryOptions {
  /** Restarts of one job within `restartWindowMs` before it is FAILED. */
  maxRestarts: number;
  restartWindowMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Recovery (DESIGN §7): restarts every subtask of a failed job as a new attempt from its last completed checkpoint,
 * with a bounded number of restarts (counted from the job's lifecycle in Postgres, so a control plane that restarts
 * does not reset the budget) and an exponential backoff between them. Failures come from the failure detector,
 * the Redis epoch, worker events and the other coordinators; all go through the job's actor.
 */
export class RecoveryCoordinator {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly jobs: JobManager,
    private readonly scheduler: Scheduler,
    private readonly checkpoints: CheckpointCoordinator,
    private readonly metrics: MetricsAggregator,
    private readonly log: RecoveryLog,
    private readonly logger: Logger,
    private readonly opts: RecoveryOptions,
    /** Told when a job's attempt ends, so per-attempt state elsewhere (its stall) goes. */
    private readonly attemptEnded: (job: ActiveJob) => void,
  ) {}

  /** Recovers the job unless it ended or a recovery of `attempt` already began: a step of the job's actor. */
  failOver(job: ActiveJob, attempt: number, cause: string, failedAt?: number): Promise<void> {
    return job.actor.run(async () => {
      if (this.jobs.active.get(job.id) === job && job.attempt === attempt) await this.recover(job, cause, failedAt);
    });
  }

  /**
   * Restarts the job as a new attempt from the last completed checkpoint, in a step of its actor. `failedAt` is
   * when the failure happened as far as the control plane can tell (a lost worker's last heartbeat), for the
   * timeline.
   */
  async recover(job: ActiveJob, cause: string, failedAt?: number): Promise<void> {
    const now = Date.now();
    // Checked before anything stops; which checkpoint it restarts from is read after the old attempt stopped (one in
    // flight may complete until then).
    const gone = await this.restoreFrom(job.id);
    if (gone && 'lost' in gone) {
      // Restarting would start from nothing (its sources at their start): a silent loss of state, so it fails instead.
      const lost = `cannot recover: ${gone.lost}`;
      this.logger.error({ jobId: job.id, attempt: job.attempt, cause }, `job failed: ${lost}`);
      await this.record(job, () =>
        this.log.gaveUp(job.id, { attempt: job.attempt, cause, detectedAt: now, reason: lost, ...(failedAt !== undefined && { failedAt }) }),
      );
      await this.jobs.end(job, 'FAILED', `${cause}; ${lost}`);
      return;
    }
    const restarts = await this.prisma.jobEvent.count({
      where: { jobId: job.id, toState: 'RECOVERING', at: { gt: new Date(now - this.opts.restartWindowMs) } },
    });
    if (restarts >= this.opts.maxRestarts) {
      const gaveUp = `gave up after ${restarts} restarts within ${this.opts.restartWindowMs} ms`;
      this.logger.error({ jobId: job.id, attempt: job.attempt, cause }, `job failed: ${gaveUp}`);
      await this.record(job, () =>
        this.log.gaveUp(job.id, { attempt: job.attempt, cause, detectedAt: now, reason: gaveUp, ...(failedAt !== undefined && { failedAt }) }),
      );
      await this.jobs.end(job, 'FAILED', `${cause}; ${gaveUp}`);
      return;
    }
    const old = job.attempt;
    const attempt = old + 1;
    // Recorded first: not recorded (Postgres unreachable), nothing changed, the old attempt runs on and the failure
    // is seen again.
    await this.jobs.move(job, 'RECOVERING', cause, attempt);
    this.logger.warn({ jobId: job.id, attempt, cause }, 'recovering');
    job.checkpointFailures = 0;
    job.failoverDue = undefined;
    job.running.clear();
    job.finished.clear();
    job.enqueuedAt = undefined;
    job.lastSeen.clear();
    job.restored = { keyGroups: 0, bytes: 0, ms: 0 };
    this.attemptEnded(job);
    // What each chain used before the failure, for placement to balance the new attempt's subtasks by (read before
    // the reports go).
    const costs = this.metrics.costs(
      job.id,
      job.chains.map((c) => c.id),
      failedAt ?? now,
    );
    this.metrics.resetRates(job.id);
    await this.checkpoints.abandon(job, `attempt ${old} ended: ${cause}`);
    await this.scheduler.fence(job.id, attempt);
    await this.scheduler.stopAttempt(job, old);
    await this.scheduler.deleteAttempt(job.id, old);
    const from = await this.restoreFrom(job.id);
    // A checkpoint of its own can have completed since the check above; the one it started from cannot come back.
    if (from && 'lost' in from) throw new Error(`job ${job.id}: ${from.lost}`);
    await this.record(job, () =>
      this.log.started(job.id, { attempt, cause, detectedAt: now, ...(failedAt !== undefined && { failedAt }), ...(from && { checkpoint: from }) }),
    );
    // Exponential backoff between restarts of one job.
    await sleep(Math.min(200 * 2 ** restarts, 30_000));
    if (this.jobs.active.get(job.id) !== job || job.state !== 'RECOVERING' || job.attempt !== attempt) return;
    await this.startDownToDesired(job);
    await this.scheduler.enqueue(job, from?.id, costs);
  }

  /**
   * The new attempt starts every subtask anew, so a chain asked to go down (a rescale asked for while the job could not
   * start, or was recovering) starts there: fewer slots, and its state restores at any parallelism. The rescale
   * waiting in the queue then finds the job where it was asked to be. A rescale up stays a live rescale.
   */
  private async startDownToDesired(job: ActiveJob): Promise<void> {
    const plan = planDownToDesired(job.plan, job.chains, job.desired);
    if (plan === job.plan) return;
    const changed = job.chains.filter((c) => plan.vertices[c.id]!.parallelism !== c.parallelism);
    await this.prisma.job.update({ where: { id: job.id }, data: { plan: plan as object } });
    for (const gone of adoptPlan(job, plan)) for (const v of gone.vertexIds) this.metrics.forgetSubtask(job.id, v, gone.index);
    this.logger.info(
      { jobId: job.id, attempt: job.attempt, parallelism: Object.fromEntries(changed.map((c) => [c.id, plan.vertices[c.id]!.parallelism])) },
      'the new attempt starts at the lower parallelism asked for',
    );
  }

  /** Every subtask of the recovery's attempt runs again. */
  async recovered(job: ActiveJob): Promise<void> {
    this.logger.info({ jobId: job.id, attempt: job.attempt, restored: job.restored }, 'recovered');
    await this.record(job, () => this.log.running(job.id, job.attempt, job.restored));
  }

  /**
   * The job's last completed checkpoint, else the one it was deployed from, else null (from the start). `lost` when the
   * one it was deployed from is needed and no longer holds its state.
   */
  private async restoreFrom(jobId: string): Promise<{ id: number; number: number } | { lost: string } | null> {
    const latest = await this.prisma.checkpoint.findFirst({
      where: { jobId, status: 'COMPLETED' },
      orderBy: { number: 'desc' },
      select: { id: true, number: true },
    });
    if (latest) return latest;
    const row = await this.prisma.job.findUniqueOrThrow({
      where: { id: jobId },
      select: { restoredFromId: true, restoredFromJobId: true, restoredFromNumber: true },
    });
    if (row.restoredFromId === null) return null;
    const cp = await this.prisma.checkpoint.findUnique({ where: { id: row.restoredFromId }, select: { id: true, number: true, status: true } });
    if (cp?.status === 'COMPLETED') return { id: cp.id, number: cp.number };
    const which = row.restoredFromJobId ? `#${row.restoredFromNumber} of job ${row.restoredFromJobId}` : `id ${row.restoredFromId}`;
    return {
      lost: `it has no checkpoint of its own, and the state of checkpoint ${which}, which it started from, is gone (${cp ? cp.status : 'deleted'}); restarting would start from nothing`,
    };
  }

  /** Writes a recovery record; the timeline is worth less than the recovery itself, so a failure here is only logged. */
  private async record(job: ActiveJob, write: () => Promise<void>): Promise<void> {
    await write().catch((err) => this.logger.warn({ jobId: job.id, error: (err as Error).message }, 'writing a recovery record failed'));
  }
}
