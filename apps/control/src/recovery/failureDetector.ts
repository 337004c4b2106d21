import type { Stall } from '@keyflow/api';
import type { Logger, RedisKeys, WorkerEvent } from '@keyflow/runtime';
import type { Redis } from 'ioredis';
import { listWorkers, redisNow } from '../cluster/workers.ts';
import type { Emitter } from '../http/emitter.ts';
import type { ActiveJob } from '../jobs/activeJob.ts';
import type { JobManager } from '../jobs/jobManager.ts';
import type { RecoveryCoordinator } from './recoveryCoordinator.ts';
import type { StallDetector } from './stallDetector.ts';

type MetricsEvent = Extract<WorkerEvent, { type: 'metrics' }>;

/**
 * Finds failed jobs and hands them to the recovery coordinator: a subtask no worker's heartbeat lists any more (its
 * worker died, hangs or dropped it), a task job BullMQ failed, a job whose checkpoints fail past what it tolerates,
 * and a stuck job (the stall detector: shown at once, failed over after its timeout).
 */
export class FailureDetector {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly jobs: JobManager,
    private readonly recovery: RecoveryCoordinator,
    private readonly stalls: StallDetector,
    private readonly emitter: Emitter,
    private readonly logger: Logger,
  ) {}

  /** A subtask's metrics: what the stall detector judges progress by. */
  onMetrics(e: MetricsEvent): void {
    const job = this.jobs.active.get(e.jobId);
    if (job?.attempt === e.attempt) this.stalls.record(e, Date.now());
  }

  /** The control plane read its workers' events (with events or without): it can hear them. */
  hearing(at: number): void {
    this.stalls.hearing(at);
  }

  /** A task job BullMQ gave up on (its worker died and the lock expired, or it threw). */
  onTaskFailed(jobId: string, attempt: number, subtask: string, reason: string): Promise<void> {
    const job = this.jobs.active.get(jobId);
    return job ? this.recovery.failOver(job, attempt, `${subtask} lost: ${reason}`) : Promise.resolve();
  }

  /**
   * Heartbeats: a running job's subtask whose worker has not reported it for `timeoutMs` is lost, and the job
   * recovers — long before BullMQ's lock would expire. The time counts from the last heartbeat that listed the
   * subtask, so detection takes `timeoutMs`, not more. Also fails over a job whose checkpoints failed too often.
   */
  async checkLiveness(timeoutMs: number): Promise<void> {
    // Heartbeats carry Redis's clock (workers stamp them with TIME): judged by that clock too, never by comparing
    // a worker host's clock with this one's. `skew` turns Redis times into this host's for the timeline.
    const now = await redisNow(this.redis);
    const skew = Date.now() - now;
    const seen = new Map<string, number>();
    const takenBy = new Map<string, string>();
    const workers = await listWorkers(this.redis, this.keys);
    this.stalls.poolSeen({
      workers: workers.length,
      slots: workers.reduce((n, w) => n + w.slots, 0),
      usedSlots: workers.reduce((n, w) => n + w.usedSlots, 0),
    });
    for (const w of workers) {
      const at = new Date(w.lastHeartbeat).getTime();
      for (const s of w.subtasks) {
        const key = `${s.jobId}@${s.attempt}/${s.vertexId}#${s.index}`;
        seen.set(key, Math.max(at, seen.get(key) ?? 0));
        takenBy.set(key, w.id);
      }
    }
    for (const job of [...this.jobs.active.values()]) {
      if (job.failoverDue && job.state === 'RUNNING') {
        await this.recovery
          .failOver(job, job.attempt, job.failoverDue, Date.now())
          .catch((err) => this.logger.warn({ jobId: job.id, error: (err as Error).message }, 'fail-over not possible yet'));
        continue;
      }
      // A rescale in flight counts as running: a worker lost mid-rescale must end it in a recovery, not a hang.
      if (job.state !== 'RUNNING' && job.state !== 'RESCALING') {
        job.lastSeen.clear();
        // A starting attempt: which worker took which subtask, for the stall detector to say who has not started.
        if (job.state === 'SCHEDULING' || job.state === 'RECOVERING')
          for (const key of job.subtasks) {
            const worker = takenBy.get(`${job.id}@${job.attempt}/${key}`);
            if (worker) job.takenBy.set(key, worker);
          }
        continue;
      }
      // Subtasks a rescale in flight started are watched as well: a worker lost in its restore must not hang it.
      const watched = new Set([...job.running].filter((key) => !job.finished.has(key)));
      for (const key of job.lastSeen.keys()) if (!watched.has(key)) job.lastSeen.delete(key);
      for (const key of watched) {
        const at = seen.get(`${job.id}@${job.attempt}/${key}`);
        // A subtask not listed yet (its worker's next heartbeat is due) is given the whole timeout from now.
        if (at !== undefined) job.lastSeen.set(key, Math.max(at, job.lastSeen.get(key) ?? 0));
        else if (!job.lastSeen.has(key)) job.lastSeen.set(key, now);
      }
      const lost = [...job.lastSeen].filter(([, at]) => now - at >= timeoutMs);
      if (!lost.length) continue;
      const failedAt = Math.min(...lost.map(([, at]) => at)) + skew;
      job.lastSeen.clear();
      await this.recovery.failOver(
        job,
        job.attempt,
        `no heartbeat for ${lost.map(([key]) => key).join(', ')} within ${timeoutMs} ms (worker lost)`,
        failedAt,
      );
    }
  }

  /**
   * A stuck job never looks healthy: shows who holds a running job up as soon as it stops moving, and fails it over
   * once that lasts for the stall timeout (instead of waiting for checkpoints to time out, one after another).
   */
  async checkProgress(): Promise<void> {
    const now = Date.now();
    for (const job of [...this.jobs.active.values()]) {
      const stall = this.stalls.evaluate(job, now);
      this.show(job, stall);
      if (!stall?.failover) continue;
      const subtasks = stall.subtasks.map((s) => `${s.subtask} ${s.reason}`).join('; ');
      const cause = `stalled for ${Math.round((now - Date.parse(stall.since)) / 1000)} s: ${subtasks}`;
      await this.recovery
        .failOver(job, job.attempt, cause, Date.parse(stall.since))
        .catch((err) => this.logger.warn({ jobId: job.id, error: (err as Error).message }, 'fail-over of a stalled job failed'));
    }
  }

  /** The job's attempt ended (a recovery) or the job did: its stall, if any, is over. */
  forget(job: ActiveJob, ended: boolean): void {
    if (ended) this.stalls.forget(job.id);
    this.show(job, undefined);
  }

  /** Keeps a job's stall and tells its room and the job list when who holds it up changed (or that it moves again). */
  private show(job: ActiveJob, stall: Stall | undefined): void {
    const shown = (s: Stall | undefined) => JSON.stringify(s?.subtasks.map(({ subtask, reason }) => [subtask, reason]) ?? null);
    if (shown(job.stall) === shown(stall)) {
      if (stall) job.stall = { ...job.stall!, failoverAt: stall.failoverAt };
      return;
    }
    job.stall = stall && { jobId: stall.jobId, since: stall.since, failoverAt: stall.failoverAt, subtasks: stall.subtasks };
    this.emitter.jobStall({ jobId: job.id, stall: job.stall ?? null });
    if (stall) this.logger.warn({ jobId: job.id, subtasks: stall.subtasks }, 'job stalled');
    else this.logger.info({ jobId: job.id }, 'job moves again');
  }
}
