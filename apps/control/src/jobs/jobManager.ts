import { randomUUID } from 'node:crypto';
import type { DeployJobBody, Stall } from '@keyflow/api';
import { initialPlan, postgresSinkSettings, sinkDelivery, validateGraph, type JobPlan } from '@keyflow/core';
import type { Job, PrismaClient } from '@keyflow/db';
import { PostgresSink, type RedisKeys, type WorkerEvent } from '@keyflow/runtime';
import type { Redis } from 'ioredis';
import { activeJobOf, subtaskKey, type ActiveJob } from './activeJob.ts';
import type { CheckpointCoordinator } from '../checkpoints/checkpointCoordinator.ts';
import type { Emitter } from '../http/emitter.ts';
import { activeStates, type JobLifecycle } from './lifecycle.ts';
import type { MetricsAggregator } from '../observability/metrics.ts';
import type { Recoveries } from '../recovery/recoveryLog.ts';
import type { Scheduler } from '../cluster/scheduler.ts';
import type { StallDetector } from '../recovery/stallDetector.ts';
import { listWorkers } from '../cluster/workers.ts';

/**
 * Whether a subtask's stop is one the plan makes: a stop with savepoint, a rescale taking it away (the rescale in
 * flight, or one the plan already shows), or a rolled-back rescale's new subtask. Anything else is a failure.
 */
export function plannedStop(job: ActiveJob, e: Extract<WorkerEvent, { type: 'stopped' }>): boolean {
  switch (e.cause) {
    case 'stop':
      return job.state === 'STOPPING';
    case 'rolled-back':
      return !job.subtasks.includes(subtaskKey(e.vertexId, e.index));
    case 'scaled-away': {
      const r = job.pending?.rescale;
      const inFlight = r !== undefined && r.scalingId === e.scalingId && r.chainId === e.vertexId && e.index >= r.parallelism;
      return inFlight || e.index >= (job.plan.vertices[e.vertexId]?.parallelism ?? 0);
    }
    default:
      return false;
  }
}

function stopDescription(e: Extract<WorkerEvent, { type: 'stopped' }>): string {
  const scaling = e.scalingId !== undefined ? ` by scaling event ${e.scalingId}` : '';
  const why: Record<typeof e.cause, string> = {
    stop: 'told to stop',
    cancel: 'told to cancel',
    'scaled-away': `scaled away${scaling}`,
    'rolled-back': `rolled back${scaling}`,
    'rescale-aborted': `its rescale was aborted${scaling}`,
    aborted: 'its worker ended it',
  };
  return why[e.cause];
}

/** A request the API answers with a 4xx: status and a message for the user. */
export class RequestError extends Error {
  constructor(
    readonly status: 404 | 409 | 422 | 503,
    message: string,
  ) {
    super(message);
  }
}

export interface JobManagerOptions {
  maxRestarts: number;
  restartWindowMs: number;
  /** The database exactly-once sinks write to (the one subtasks get). */
  databaseUrl: string;
  /** How long an ended job's samples and dead letters stay readable in Redis. */
  keepEndedMs: number;
  log: (msg: string, extra?: object) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const allUp = (job: ActiveJob) =>
  (job.state === 'SCHEDULING' || job.state === 'RECOVERING') && job.subtasks.every((k) => job.running.has(k));

/**
 * Runs jobs: deploys them, reacts to their subtasks' events, stops, cancels and recovers them. It moves jobs only
 * through the lifecycle and leaves checkpoints to the checkpoint coordinator.
 */
export class JobManager {
  readonly active = new Map<string, ActiveJob>();
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Whether this control plane holds the lease and coordinates the jobs (else it stands by). */
  coordinating = false;
  /** The Redis epoch this control plane saw last; a missing one means Redis lost its data. */
  private epoch?: string;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly lifecycle: JobLifecycle,
    private readonly scheduler: Scheduler,
    private readonly checkpoints: CheckpointCoordinator,
    private readonly metrics: MetricsAggregator,
    private readonly emitter: Emitter,
    private readonly recoveries: Recoveries,
    private readonly stalls: StallDetector,
    private readonly opts: JobManagerOptions,
  ) {}

  /**
   * Runs `fn` after every earlier operation on the same job: worker events, lost tasks, stop and cancel
   * each see the state the one before left, so two failures cannot start two recoveries.
   */
  private serial<T>(jobId: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.locks.get(jobId) ?? Promise.resolve()).then(fn);
    const settled = run.catch(() => {});
    this.locks.set(jobId, settled);
    void settled.then(() => this.locks.get(jobId) === settled && this.locks.delete(jobId));
    return run;
  }

  /** Takes up the jobs that were active when the control plane last stopped (or when it took over the lease). */
  async resume(): Promise<void> {
    this.active.clear();
    await this.prisma.checkpoint.updateMany({
      where: { status: 'PENDING' },
      data: { status: 'FAILED', failureReason: 'the control plane restarted while it was pending' },
    });
    await this.takeEpoch();
    this.coordinating = true;
    const jobs = await this.prisma.job.findMany({ where: { state: { in: [...activeStates] } }, include: { pipelineVersion: true } });
    if (!jobs.length) return;
    const alive = new Set(
      (await listWorkers(this.redis, this.keys)).flatMap((w) => w.subtasks.map((s) => `${s.jobId}@${s.attempt}/${subtaskKey(s.vertexId, s.index)}`)),
    );
    for (const row of jobs) {
      const job = activeJobOf(row);
      this.active.set(job.id, job);
      const missing = job.subtasks.filter((k) => !alive.has(`${job.id}@${job.attempt}/${k}`));
      if (missing.length === 0 && row.state === 'RUNNING') {
        for (const k of job.subtasks) job.running.add(k);
        this.opts.log('resumed job', { jobId: job.id });
      } else {
        await this.recover(job, `control plane restarted; ${missing.length} of ${job.subtasks.length} subtasks were not running`).catch(
          (err) => this.opts.log('resume failed', { jobId: job.id, error: (err as Error).message }),
        );
      }
    }
  }

  /** Stops coordinating (another control plane took the lease): the jobs run on and are its to coordinate now. */
  release(): void {
    this.coordinating = false;
    for (const job of this.active.values()) if (job.pending) clearTimeout(job.pending.timer);
    this.active.clear();
  }

  /** Refuses a change while this control plane stands by: another one coordinates the jobs. */
  assertCoordinating(): void {
    if (!this.coordinating) throw new RequestError(503, 'this control plane is standing by: another one coordinates the jobs (or it is still taking over)');
  }

  /**
   * Redis that comes back empty after a restart has lost every channel, command and task job: each active job
   * recovers from its last checkpoint in Postgres. An epoch key tells: it is gone only if Redis lost its data.
   */
  async checkRedis(): Promise<void> {
    if (!this.coordinating) return;
    const epoch = await this.redis.get(this.keys.epoch);
    if (epoch !== null && epoch === this.epoch) return;
    if (epoch !== null) {
      this.epoch = epoch;
      return;
    }
    await this.takeEpoch();
    this.opts.log('Redis lost its data; recovering every active job from its last checkpoint', { jobs: this.active.size });
    for (const job of [...this.active.values()]) {
      const attempt = job.attempt;
      await this.serial(job.id, async () => {
        if (this.active.get(job.id) === job && job.attempt === attempt)
          // When Redis lost its data is not known (only when it was noticed): the timeline shows no detection time.
          await this.recover(job, 'Redis restarted without its data (channels, commands and tasks lost)');
      }).catch((err) => this.opts.log('recovery failed', { jobId: job.id, error: (err as Error).message }));
    }
  }

  /** Sets Redis's epoch unless one is there (another control plane's, set meanwhile, wins) and remembers it. */
  private async takeEpoch(): Promise<void> {
    await this.redis.set(this.keys.epoch, randomUUID(), 'NX');
    this.epoch = (await this.redis.get(this.keys.epoch)) ?? undefined;
  }

  async deploy(body: DeployJobBody): Promise<Job> {
    this.assertCoordinating();
    const version = await this.prisma.pipelineVersion.findFirst({
      where: { pipelineId: body.pipelineId, ...(body.version !== undefined && { version: body.version }) },
      orderBy: { version: 'desc' },
    });
    if (!version)
      throw new RequestError(404, body.version ? `pipeline ${body.pipelineId} has no version ${body.version}` : `no pipeline ${body.pipelineId}`);
    let valid = validateGraph(version.graph);
    if (!valid.ok) throw new RequestError(422, `version ${version.version} is invalid: ${valid.issues[0]?.message}`);
    if (body.parallelism) {
      const ids = new Set(valid.graph.vertices.map((v) => v.id));
      const unknown = Object.keys(body.parallelism).filter((id) => !ids.has(id));
      if (unknown.length) throw new RequestError(422, `parallelism: version ${version.version} has no operator ${unknown.map((id) => `'${id}'`).join(', ')}`);
      // The graph's rules (forward edges need equal parallelism at both ends, maxParallelism) hold for the job's parallelism too.
      const p = body.parallelism;
      valid = validateGraph({ ...valid.graph, vertices: valid.graph.vertices.map((v) => ({ ...v, parallelism: p[v.id] ?? v.parallelism })) });
      if (!valid.ok) throw new RequestError(422, `parallelism: ${valid.issues[0]?.message}`);
    }
    const plan = initialPlan(valid.graph);
    if (body.restoreFromCheckpointId !== undefined) await this.adoptMaxParallelism(plan, body.restoreFromCheckpointId, body.pipelineId);
    const row = await this.prisma.job.create({
      data: {
        pipelineId: body.pipelineId,
        pipelineVersionId: version.id,
        plan: plan as object,
        restoredFromId: body.restoreFromCheckpointId ?? null,
        ...(body.checkpointIntervalMs !== undefined && { checkpointIntervalMs: body.checkpointIntervalMs }),
        ...(body.checkpointTimeoutMs !== undefined && { checkpointTimeoutMs: body.checkpointTimeoutMs }),
        ...(body.tolerableCheckpointFailures !== undefined && { tolerableCheckpointFailures: body.tolerableCheckpointFailures }),
      },
    });
    await this.lifecycle.created(row);
    const job = activeJobOf({ ...row, pipelineVersion: version });
    this.active.set(job.id, job);
    await this.move(job, 'SCHEDULING');
    await this.scheduler.enqueue(job, body.restoreFromCheckpointId);
    return this.prisma.job.findUniqueOrThrow({ where: { id: job.id } });
  }

  /** State is portable only at the maxParallelism it was written with: a restored job keeps it. */
  private async adoptMaxParallelism(plan: JobPlan, checkpointId: number, pipelineId: string): Promise<void> {
    const cp = await this.prisma.checkpoint.findUnique({ where: { id: checkpointId }, include: { job: true } });
    if (!cp) throw new RequestError(404, `no checkpoint ${checkpointId}`);
    if (cp.status !== 'COMPLETED') throw new RequestError(409, `checkpoint ${checkpointId} is ${cp.status}, not COMPLETED`);
    if (cp.job.pipelineId !== pipelineId) throw new RequestError(422, `checkpoint ${checkpointId} belongs to another pipeline`);
    const old = cp.job.plan as unknown as JobPlan;
    for (const [id, v] of Object.entries(plan.vertices)) {
      const was = old.vertices[id];
      if (!was) continue;
      if (v.parallelism > was.maxParallelism)
        throw new RequestError(422, `${id}: parallelism ${v.parallelism} exceeds the checkpoint's maxParallelism ${was.maxParallelism}`);
      v.maxParallelism = was.maxParallelism;
    }
  }

  /** Moves a job through the lifecycle and keeps the in-memory state in step. */
  async move(job: ActiveJob, to: ActiveJob['state'], reason?: string, attempt?: number): Promise<void> {
    await this.lifecycle.transition(job.id, to, reason, attempt !== undefined ? { attempt } : {});
    job.state = to;
    if (attempt !== undefined) job.attempt = attempt;
  }

  private activeOr409(jobId: string): ActiveJob {
    const job = this.active.get(jobId);
    if (!job) throw new RequestError(409, `job ${jobId} is not running`);
    return job;
  }

  stop(jobId: string): Promise<void> {
    return this.serial(jobId, () => this.stopNow(jobId));
  }

  private async stopNow(jobId: string): Promise<void> {
    this.assertCoordinating();
    const job = this.activeOr409(jobId);
    if (job.state !== 'RUNNING') throw new RequestError(409, `job ${jobId} is ${job.state}; only a RUNNING job can be stopped`);
    await this.move(job, 'STOPPING', 'stop with savepoint requested');
    void this.stopWithSavepoint(job).catch((err) => this.opts.log('stop failed', { jobId, error: (err as Error).message }));
  }

  private async stopWithSavepoint(job: ActiveJob): Promise<void> {
    if (job.pending) await this.checkpoints.settled(job.pending);
    const pending = await this.checkpoints.trigger(job, 'SAVEPOINT', { stopAfter: true });
    const result = await this.checkpoints.settled(pending);
    if (job.state !== 'STOPPING') return;
    if (!result.ok) {
      await this.move(job, 'RUNNING', `savepoint failed, job keeps running: ${result.reason}`);
      return;
    }
    await this.scheduler.command(job.id, { type: 'stop', attempt: job.attempt });
    await this.end(job, 'STOPPED', `stopped with savepoint ${pending.number}`);
  }

  cancel(jobId: string): Promise<void> {
    return this.serial(jobId, () => this.cancelNow(jobId));
  }

  private async cancelNow(jobId: string): Promise<void> {
    this.assertCoordinating();
    const job = this.active.get(jobId);
    if (!job) {
      const row = await this.prisma.job.findUnique({ where: { id: jobId } });
      if (!row) throw new RequestError(404, `no job ${jobId}`);
      throw new RequestError(409, `job ${jobId} is already ${row.state}`);
    }
    await this.end(job, 'CANCELED', 'canceled by request');
  }

  async triggerCheckpoint(jobId: string, kind: 'MANUAL' | 'SAVEPOINT' = 'MANUAL') {
    this.assertCoordinating();
    const job = this.activeOr409(jobId);
    if (job.state !== 'RUNNING') throw new RequestError(409, `job ${jobId} is ${job.state}; checkpoints need a RUNNING job`);
    if (job.rescaling) throw new RequestError(409, 'a rescale is in progress; its checkpoint comes first');
    // A checkpoint or savepoint asked for while one is in flight is taken right after it, as Flink does.
    // (Not on the job's serial queue: the acknowledgements that settle the checkpoint in flight come through it.)
    if (job.pending) await this.checkpoints.settled(job.pending);
    if (this.active.get(jobId) !== job || job.state !== 'RUNNING' || job.rescaling)
      throw new RequestError(409, `job ${jobId} is ${job.state}${job.rescaling ? ' and rescaling' : ''}; the ${kind === 'SAVEPOINT' ? 'savepoint' : 'checkpoint'} was not taken`);
    return this.checkpoints.trigger(job, kind);
  }

  /** Ends a job for good: fences its subtasks off, stops them, and deletes its channels. */
  private async end(job: ActiveJob, to: 'STOPPED' | 'CANCELED' | 'FAILED' | 'FINISHED', reason: string): Promise<void> {
    this.active.delete(job.id);
    // Before the state says so: a job shown STOPPED or CANCELED has its sinks' output settled.
    if (to !== 'FINISHED')
      await this.settleSinks(job).catch((err) => this.opts.log('settling the sinks failed', { jobId: job.id, error: (err as Error).message }));
    await this.move(job, to, reason);
    await this.scheduler.fence(job.id, 'ended');
    await this.record(job, () => this.recoveries.close(job.id, 'FAILED', `job ${to.toLowerCase()}: ${reason}`));
    await this.checkpoints.abandon(job, `job ${to.toLowerCase()}`);
    if (to !== 'FINISHED') await this.scheduler.stopAttempt(job, job.attempt);
    await this.scheduler.deleteJob(job.id, this.opts.keepEndedMs);
    this.metrics.resetRates(job.id);
    this.stalls.forget(job.id);
    if (job.stall) this.emitter.jobStall({ jobId: job.id, stall: null });
  }

  /**
   * A job that ends before its input does (canceled, failed, stopped) leaves its exactly-once sinks as a recovery
   * would find them: what a completed checkpoint covers is committed, the rest discarded, and the last attempt
   * fenced off (its subtasks may still be stopping). A stop's subtasks commit its savepoint themselves too; this
   * makes sure of it even when their commit failed. (A finished job's subtasks commit everything at their end.)
   */
  private async settleSinks(job: ActiveJob): Promise<void> {
    const sinks = job.graph.vertices.filter((v) => v.type === 'postgres' && sinkDelivery(v) === 'exactly-once');
    if (!sinks.length) return;
    const last = await this.prisma.checkpoint.findFirst({ where: { jobId: job.id, status: 'COMPLETED' }, orderBy: { number: 'desc' }, select: { number: true } });
    for (const v of sinks) {
      const ctx = { jobId: job.id, vertexId: v.id, attempt: job.attempt + 1, index: 0, recoverFrom: last?.number ?? 0 };
      const sink = new PostgresSink(postgresSinkSettings.parse(v.settings ?? {}), this.opts.databaseUrl, ctx, () => {});
      try {
        await sink.open();
      } finally {
        await sink.close();
      }
    }
  }

  /**
   * Restarts every subtask as a new attempt from the last completed checkpoint (DESIGN §7). `failedAt` is when
   * the failure happened as far as the control plane can tell (a lost worker's last heartbeat), for the timeline.
   */
  async recover(job: ActiveJob, reason: string, failedAt?: number): Promise<void> {
    const now = Date.now();
    job.restarts = job.restarts.filter((t) => now - t < this.opts.restartWindowMs);
    if (job.restarts.length >= this.opts.maxRestarts) {
      const gaveUp = `gave up after ${job.restarts.length} restarts within ${this.opts.restartWindowMs} ms`;
      await this.record(job, () =>
        this.recoveries.gaveUp(job.id, { attempt: job.attempt, cause: reason, detectedAt: now, reason: gaveUp, ...(failedAt !== undefined && { failedAt }) }),
      );
      await this.end(job, 'FAILED', `${reason}; ${gaveUp}`);
      return;
    }
    job.restarts.push(now);
    const old = job.attempt;
    const was = job.state;
    // Bumped before any await: events and failures of the old attempt are ignored from here on.
    job.attempt = old + 1;
    try {
      await this.move(job, 'RECOVERING', reason, job.attempt);
    } catch (err) {
      // Not recorded (Postgres unreachable): nothing changed, the old attempt runs on and the recovery is tried again.
      job.attempt = old;
      job.state = was;
      job.restarts.pop();
      throw err;
    }
    job.checkpointFailures = 0;
    job.failoverDue = undefined;
    job.running.clear();
    job.finished.clear();
    job.lastSeen.clear();
    job.restored = { keyGroups: 0, bytes: 0, ms: 0 };
    this.setStall(job, undefined);
    this.metrics.resetRates(job.id);
    await this.checkpoints.abandon(job, `attempt ${old} ended: ${reason}`);
    await this.scheduler.fence(job.id, job.attempt);
    await this.scheduler.stopAttempt(job, old);
    await this.scheduler.deleteAttempt(job.id, old);
    const latest = await this.prisma.checkpoint.findFirst({
      where: { jobId: job.id, status: 'COMPLETED' },
      orderBy: { number: 'desc' },
      select: { id: true, number: true },
    });
    const row = await this.prisma.job.findUniqueOrThrow({ where: { id: job.id }, select: { restoredFromId: true } });
    const from = latest ?? (row.restoredFromId !== null ? await this.prisma.checkpoint.findUnique({ where: { id: row.restoredFromId }, select: { id: true, number: true } }) : null);
    const attempt = job.attempt;
    await this.record(job, () =>
      this.recoveries.started(job.id, {
        attempt,
        cause: reason,
        detectedAt: now,
        ...(failedAt !== undefined && { failedAt }),
        ...(from && { checkpoint: from }),
      }),
    );
    // Exponential backoff between restarts of one job.
    await sleep(Math.min(200 * 2 ** (job.restarts.length - 1), 30_000));
    if (this.active.get(job.id) !== job || job.state !== 'RECOVERING' || job.attempt !== attempt) return;
    await this.scheduler.enqueue(job, from?.id);
  }

  /** Recovers the job unless a recovery of `attempt` already began (on the job's queue, like every failure). */
  recoverAttempt(job: ActiveJob, attempt: number, reason: string): Promise<void> {
    return this.serial(job.id, async () => {
      if (this.active.get(job.id) === job && job.attempt === attempt) await this.recover(job, reason, Date.now());
    });
  }

  /** Writes a recovery record; the timeline is worth less than the recovery itself, so a failure here is only logged. */
  private async record(job: ActiveJob, write: () => Promise<void>): Promise<void> {
    await write().catch((err) => this.opts.log('recovery record failed', { jobId: job.id, error: (err as Error).message }));
  }

  async onEvent(e: WorkerEvent): Promise<void> {
    if (e.type === 'metrics') {
      // An old attempt's last metrics would put its rates back after a recovery reset them.
      const job = this.active.get(e.jobId);
      if (!job || e.attempt === job.attempt) this.metrics.record(e);
      if (job?.attempt === e.attempt) this.stalls.record(e, Date.now());
      return;
    }
    return this.serial(e.jobId, () => this.handle(e));
  }

  private async handle(e: Exclude<WorkerEvent, { type: 'metrics' }>): Promise<void> {
    const job = this.active.get(e.jobId);
    if (!job || e.attempt !== job.attempt) return;
    const key = subtaskKey(e.vertexId, e.index);
    switch (e.type) {
      case 'running':
        job.running.add(key);
        job.restored.keyGroups += e.restoredKeyGroups;
        job.restored.bytes += e.restoredBytes;
        job.restored.ms = Math.max(job.restored.ms, e.restoreMs);
        return this.runWhenAllUp(job);
      case 'ack':
        return this.checkpoints.onAck(job, e);
      case 'decline':
        return this.checkpoints.onDecline(job, e.checkpointId, key, e.reason);
      case 'finished':
        job.finished.add(key);
        await this.checkpoints.onFinished(job, key);
        if (job.subtasks.every((k) => job.finished.has(k))) await this.end(job, 'FINISHED', 'every source reached its end');
        return;
      case 'failed':
        if (job.state !== 'CREATED')
          await this.recover(job, `${key} failed: ${e.error}`, Date.now());
        return;
      case 'stopped':
        job.running.delete(key);
        // A subtask the plan keeps that stops (a stale barrier, its worker closing) is a failure, not an end.
        if (!plannedStop(job, e) && job.state !== 'CREATED')
          await this.recover(job, `${key} stopped although the plan keeps it (${stopDescription(e)})`, Date.now());
        return;
    }
  }

  /** Moves a scheduled or recovering job to RUNNING once every subtask of its attempt runs. */
  private async runWhenAllUp(job: ActiveJob): Promise<void> {
    if (!allUp(job)) return;
    job.lastCheckpointAt = Date.now();
    const { keyGroups, bytes, ms } = job.restored;
    const restored = keyGroups || bytes ? `; restored ${keyGroups} key groups (${bytes} bytes) in ${ms} ms` : '';
    const recovered = job.state === 'RECOVERING';
    await this.move(job, 'RUNNING', `${recovered ? `recovered as attempt ${job.attempt}` : 'all subtasks running'}${restored}`);
    if (recovered) await this.record(job, () => this.recoveries.running(job.id, job.attempt, job.restored));
  }

  /** A task job BullMQ gave up on (its worker died and the lock expired, or it threw). */
  onTaskFailed(jobId: string, attempt: number, subtask: string, reason: string): Promise<void> {
    return this.serial(jobId, async () => {
      const job = this.active.get(jobId);
      if (!job || job.attempt !== attempt) return;
      await this.recover(job, `${subtask} lost: ${reason}`);
    });
  }

  /**
   * Failure detection from heartbeats: a RUNNING job's subtask whose worker has not reported it for `timeoutMs`
   * is lost (the worker died, hangs, or dropped it), and the job recovers — long before BullMQ's lock would expire.
   * The time counts from the last heartbeat that listed the subtask, so detection takes `timeoutMs`, not more.
   */
  async checkLiveness(timeoutMs: number): Promise<void> {
    const now = Date.now();
    const seen = new Map<string, number>();
    for (const w of await listWorkers(this.redis, this.keys)) {
      const at = new Date(w.lastHeartbeat).getTime();
      for (const s of w.subtasks) {
        const key = `${s.jobId}@${s.attempt}/${subtaskKey(s.vertexId, s.index)}`;
        seen.set(key, Math.max(at, seen.get(key) ?? 0));
      }
    }
    for (const job of this.active.values()) {
      // Normally the last `running` event moves the job; this catches a transition that failed on the way.
      if (allUp(job)) await this.serial(job.id, () => this.runWhenAllUp(job));
      if (job.failoverDue && job.state === 'RUNNING') {
        const reason = job.failoverDue;
        await this.serial(job.id, async () => {
          if (this.active.get(job.id) === job && job.failoverDue) await this.recover(job, reason, Date.now());
        }).catch((err) => this.opts.log('fail-over not possible yet', { jobId: job.id, error: (err as Error).message }));
        continue;
      }
      // A rescale in flight counts as running: a worker lost mid-rescale must end it in a recovery, not a hang.
      if (job.state !== 'RUNNING' && job.state !== 'RESCALING') {
        job.lastSeen.clear();
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
      if (lost.length) {
        const attempt = job.attempt;
        const failedAt = Math.min(...lost.map(([, at]) => at));
        job.lastSeen.clear();
        await this.serial(job.id, async () => {
          if (this.active.get(job.id) === job && job.attempt === attempt)
            await this.recover(job, `no heartbeat for ${lost.map(([key]) => key).join(', ')} within ${timeoutMs} ms (worker lost)`, failedAt);
        });
      }
    }
  }

  /**
   * A stuck job never looks healthy: shows who holds a running job up as soon as it stops moving, and fails it over
   * once that lasts for the stall timeout (instead of waiting for checkpoints to time out, one after another).
   */
  async checkProgress(): Promise<void> {
    const now = Date.now();
    for (const job of [...this.active.values()]) {
      const stall = this.stalls.evaluate(job, now);
      this.setStall(job, stall);
      if (!stall?.failover) continue;
      const attempt = job.attempt;
      const cause = `stalled for ${Math.round((now - Date.parse(stall.since)) / 1000)} s: ${stall.subtasks.map((s) => `${s.subtask} ${s.reason}`).join('; ')}`;
      await this.serial(job.id, async () => {
        if (this.active.get(job.id) === job && job.attempt === attempt) await this.recover(job, cause, Date.parse(stall.since));
      }).catch((err) => this.opts.log('fail-over of a stalled job failed', { jobId: job.id, error: (err as Error).message }));
    }
  }

  /** Keeps a job's stall and tells the job's room when who holds it up changed (or that it moves again). */
  private setStall(job: ActiveJob, stall: Stall | undefined): void {
    const shown = (s: Stall | undefined) => JSON.stringify(s?.subtasks.map(({ subtask, reason }) => [subtask, reason]) ?? null);
    const changed = shown(job.stall) !== shown(stall);
    job.stall = stall && { jobId: stall.jobId, since: stall.since, failoverAt: stall.failoverAt, subtasks: stall.subtasks };
    if (changed) {
      this.emitter.jobStall({ jobId: job.id, stall: job.stall ?? null });
      if (stall) this.opts.log('job stalled', { jobId: job.id, subtasks: stall.subtasks });
    }
  }

  emitMetrics(): void {
    for (const id of this.metrics.jobIds()) {
      const snap = this.metrics.snapshot(id);
      if (snap) this.emitter.emit(id, 'job:metrics', snap);
    }
  }
}
