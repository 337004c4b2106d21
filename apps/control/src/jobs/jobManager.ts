import { ACTIVE_STATES, type DeployJobBody } from '@keyflow/api';
import { buildChains, graphSchema, initialPlan, parsePlan, sinkDelivery, validateGraph, type JobPlan, type Vertex } from '@keyflow/core';
import type { Job, PipelineVersion, PrismaClient } from '@keyflow/db';
import { createSink, type Logger, type RedisKeys, type WorkerEvent } from '@keyflow/runtime';
import type { Redis } from 'ioredis';
import type { CheckpointCoordinator } from '../checkpoints/checkpointCoordinator.ts';
import type { Scheduler } from '../cluster/scheduler.ts';
import { listWorkers } from '../cluster/workers.ts';
import type { Connections } from '../connections/connections.ts';
import type { Emitter } from '../http/emitter.ts';
import type { MetricsAggregator } from '../observability/metrics.ts';
import { activeJobOf, subtaskKey, type ActiveJob } from './activeJob.ts';
import type { JobLifecycle } from './lifecycle.ts';
import { checkIngestNames } from './ingestSources.ts';
import { checkDeployQuotas, type Quotas } from './quotas.ts';
import { Refused } from './refusal.ts';
import { plannedStop, stopDescription } from './stops.ts';

type RescaleEvent = Extract<WorkerEvent, { type: 'rescaled' | 'precopied' }>;

/** What other coordinators do for the job manager, wired once the control plane starts. */
export interface JobHooks {
  /** A failure seen in a step of the job's actor: recover it (or give it up), within that step. */
  recover(job: ActiveJob, cause: string, failedAt?: number): Promise<void>;
  /** Every subtask of a recovery's attempt runs: the recovery is done. */
  recovered(job: ActiveJob): Promise<void>;
  /** A rescale's worker events (loaded state, pre-copy sent), in a step of the job's actor. */
  rescale(job: ActiveJob, e: RescaleEvent): void;
  /** The job ended: whatever is kept of it elsewhere goes. */
  ended(job: ActiveJob): void;
}

export interface JobManagerOptions {
  /** The database exactly-once sinks write to, as the subtasks' sinks do (KEYFLOW_SINK_DATABASE_URL): ended jobs' are settled there. */
  sinkDatabaseUrl: string;
  /** The connection profiles a deployed version's connectors name must exist (they may have gone since it was saved). */
  connections: Pick<Connections, 'issuesIn' | 'profile'>;
  /** What one job may ask of the pool; a deploy asking for more is refused. */
  quotas: Quotas;
  /** How long an ended job's samples and dead letters stay readable in Redis. */
  keepEndedMs: number;
}

/** How long an ended job's subtasks get to stop before what they left is deleted anyway. */
const SWEEP_WAIT_MS = 30_000;

/** The exactly-once sinks of a stored graph that may not validate as a whole (one of its operators unknown here). */
function sinkVerticesOf(graph: unknown): Vertex[] {
  const parsed = graphSchema.safeParse(graph);
  return parsed.success ? parsed.data.vertices.filter((v) => sinkDelivery(v) === 'exactly-once') : [];
}

/** Every vertex of a stored plan as a chain of its own: a superset of the plan's chain heads, enough to find its tasks. */
function chainsOfPlan(plan: unknown): { id: string; parallelism: number }[] {
  try {
    return Object.entries(parsePlan(plan).vertices).map(([id, v]) => ({ id, parallelism: v.parallelism }));
  } catch {
    return [];
  }
}

const allUp = (job: ActiveJob) => (job.state === 'SCHEDULING' || job.state === 'RECOVERING') && job.subtasks.every((k) => job.running.has(k));

/**
 * Runs jobs: deploys them, hands their subtasks' events to the coordinators in the job's actor, stops, cancels and
 * ends them. It moves jobs only through the lifecycle; checkpoints, rescales and recoveries have coordinators of
 * their own.
 */
export class JobManager {
  readonly active = new Map<string, ActiveJob>();
  /** Whether this control plane holds the lease and coordinates the jobs (else it stands by). */
  coordinating = false;
  private hooks!: JobHooks;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly lifecycle: JobLifecycle,
    private readonly scheduler: Scheduler,
    private readonly checkpoints: CheckpointCoordinator,
    private readonly metrics: MetricsAggregator,
    private readonly emitter: Emitter,
    private readonly logger: Logger,
    private readonly opts: JobManagerOptions,
  ) {}

  /** Wires the coordinators in (they need the job manager themselves). */
  use(hooks: JobHooks): void {
    this.hooks = hooks;
  }

  /**
   * Takes up the jobs that were active when the control plane last stopped (or when it took over the lease): a job
   * whose subtasks all still run goes on as it is, any other recovers.
   */
  async resume(): Promise<void> {
    this.active.clear();
    await this.prisma.checkpoint.updateMany({
      where: { status: 'PENDING' },
      data: { status: 'FAILED', failureReason: 'the control plane restarted while it was pending' },
    });
    this.coordinating = true;
    const jobs = await this.prisma.job.findMany({ where: { state: { in: [...ACTIVE_STATES] } }, include: { pipelineVersion: true } });
    if (!jobs.length) return;
    const alive = new Set(
      (await listWorkers(this.redis, this.keys)).flatMap((w) => w.subtasks.map((s) => `${s.jobId}@${s.attempt}/${subtaskKey(s.vertexId, s.index)}`)),
    );
    for (const row of jobs) {
      let job: ActiveJob;
      try {
        job = activeJobOf(row);
      } catch (err) {
        // One job this control plane cannot run holds up no other: it fails, saying why, and the rest are taken up.
        await this.failUnrunnable(row, (err as Error).message);
        continue;
      }
      this.active.set(job.id, job);
      const missing = job.subtasks.filter((k) => !alive.has(`${job.id}@${job.attempt}/${k}`));
      if (missing.length === 0 && row.state === 'RUNNING') {
        for (const k of job.subtasks) job.running.add(k);
        this.logger.info({ jobId: job.id, attempt: job.attempt }, 'took the job up as it runs');
        continue;
      }
      const cause = `control plane restarted; ${missing.length} of ${job.subtasks.length} subtasks were not running`;
      await job.actor
        .run(() => this.hooks.recover(job, cause))
        .catch((err) => this.logger.error({ jobId: job.id, error: (err as Error).message }, 'recovering a job taken up failed'));
    }
  }

  /**
   * A job taken up whose stored graph or plan this control plane cannot run (an operator it lacks: a restart without
   * the KEYFLOW_OPERATORS the job was deployed with). It is ended as a failure is: its exactly-once sinks settled,
   * its subtasks fenced off and canceled, its keys swept; the reason names the checkpoint to deploy it again from.
   */
  private async failUnrunnable(row: Job & { pipelineVersion: PipelineVersion }, why: string): Promise<void> {
    const last = await this.lastCompleted(row.id);
    const lacks = /unknown operator type/.test(why) ? ' (start the control plane and the workers with the KEYFLOW_OPERATORS that provide it)' : '';
    const reason =
      `this control plane cannot run the job: ${why.replace(`job ${row.id}: `, '')}${lacks}; ` +
      (last === undefined
        ? 'it has no completed checkpoint'
        : `its last completed checkpoint is ${last}: deploy the pipeline again from it to go on where it was`);
    await this.settleSinks(row.id, row.attempt, sinkVerticesOf(row.pipelineVersion.graph)).catch((err) =>
      this.logger.error({ jobId: row.id, error: (err as Error).message }, 'settling the sinks failed'),
    );
    await this.lifecycle.transition(row.id, 'FAILED', reason);
    await this.scheduler.fence(row.id, 'ended');
    await this.scheduler.stopAttempt({ id: row.id, chains: chainsOfPlan(row.plan) }, row.attempt);
    void this.sweepWhenStopped(row.id).catch((err) =>
      this.logger.warn({ jobId: row.id, error: (err as Error).message }, 'deleting an ended job’s keys failed'),
    );
  }

  private async lastCompleted(jobId: string): Promise<number | undefined> {
    const last = await this.prisma.checkpoint.findFirst({
      where: { jobId, status: 'COMPLETED' },
      orderBy: { number: 'desc' },
      select: { number: true },
    });
    return last?.number;
  }

  /** Stops coordinating (another control plane took the lease, or this one lost it): the jobs run on without it. */
  release(): void {
    this.coordinating = false;
    for (const job of this.active.values()) if (job.pending) clearTimeout(job.pending.timer);
    this.active.clear();
  }

  /** Refuses a change while this control plane stands by: another one coordinates the jobs. */
  assertCoordinating(): void {
    if (!this.coordinating)
      throw new Refused('standing-by', 'this control plane is standing by: another one coordinates the jobs (or it is still taking over)');
  }

  async deploy(body: DeployJobBody): Promise<Job> {
    this.assertCoordinating();
    const version = await this.prisma.pipelineVersion.findFirst({
      where: { pipelineId: body.pipelineId, ...(body.version !== undefined && { version: body.version }) },
      orderBy: { version: 'desc' },
    });
    if (!version)
      throw new Refused('not-found', body.version ? `pipeline ${body.pipelineId} has no version ${body.version}` : `no pipeline ${body.pipelineId}`);
    let valid = validateGraph(version.graph);
    if (!valid.ok) throw new Refused('invalid', `version ${version.version} is invalid: ${valid.issues[0]?.message}`);
    const connectionIssue = (await this.opts.connections.issuesIn(valid.graph))[0];
    if (connectionIssue) throw new Refused('invalid', `version ${version.version} cannot run: ${connectionIssue.message}`);
    if (body.parallelism) {
      const ids = new Set(valid.graph.vertices.map((v) => v.id));
      const unknown = Object.keys(body.parallelism).filter((id) => !ids.has(id));
      if (unknown.length)
        throw new Refused('invalid', `parallelism: version ${version.version} has no operator ${unknown.map((id) => `'${id}'`).join(', ')}`);
      // The graph's rules (forward edges need equal parallelism at both ends, maxParallelism) hold for the job's parallelism too.
      const p = body.parallelism;
      valid = validateGraph({ ...valid.graph, vertices: valid.graph.vertices.map((v) => ({ ...v, parallelism: p[v.id] ?? v.parallelism })) });
      if (!valid.ok) throw new Refused('invalid', `parallelism: ${valid.issues[0]?.message}`);
    }
    const plan = initialPlan(valid.graph);
    checkDeployQuotas(valid.graph, buildChains(valid.graph, plan), this.opts.quotas);
    checkIngestNames(valid.graph, this.active.values());
    // The checkpoint's row stays locked until the job that starts from it exists: its job's retention, which locks the
    // rows it would discard before it asks which of them a live job started from, then either sees this job or has
    // discarded the checkpoint before this reads it (a 409).
    const row = await this.prisma.$transaction(async (tx) => {
      const from = body.restoreFromCheckpointId;
      if (from !== undefined) await tx.$queryRaw`SELECT id FROM "Checkpoint" WHERE id = ${from} FOR SHARE`;
      const restoredFrom = from === undefined ? undefined : await this.adoptMaxParallelism(tx, plan, from, body.pipelineId);
      return tx.job.create({
        data: {
          pipelineId: body.pipelineId,
          pipelineVersionId: version.id,
          plan: plan as object,
          restoredFromId: body.restoreFromCheckpointId ?? null,
          restoredFromJobId: restoredFrom?.jobId ?? null,
          restoredFromNumber: restoredFrom?.number ?? null,
          ...(body.checkpointIntervalMs !== undefined && { checkpointIntervalMs: body.checkpointIntervalMs }),
          ...(body.checkpointTimeoutMs !== undefined && { checkpointTimeoutMs: body.checkpointTimeoutMs }),
          ...(body.tolerableCheckpointFailures !== undefined && { tolerableCheckpointFailures: body.tolerableCheckpointFailures }),
        },
      });
    });
    await this.lifecycle.created(row);
    const job = activeJobOf({ ...row, pipelineVersion: version });
    this.active.set(job.id, job);
    await job.actor.run(async () => {
      await this.move(job, 'SCHEDULING');
      await this.scheduler.enqueue(job, body.restoreFromCheckpointId);
    });
    return this.prisma.job.findUniqueOrThrow({ where: { id: job.id } });
  }

  /** State is portable only at the maxParallelism it was written with: a restored job keeps it. Gives the checkpoint's job and number. */
  private async adoptMaxParallelism(
    db: Pick<PrismaClient, 'checkpoint'>,
    plan: JobPlan,
    checkpointId: number,
    pipelineId: string,
  ): Promise<{ jobId: string; number: number }> {
    const cp = await db.checkpoint.findUnique({ where: { id: checkpointId }, include: { job: true } });
    if (!cp) throw new Refused('not-found', `no checkpoint ${checkpointId}`);
    // Named as the dashboard lists it: by its number within its job.
    if (cp.status !== 'COMPLETED')
      throw new Refused(
        'conflict',
        `checkpoint #${cp.number} of job ${cp.jobId.slice(0, 8)} is ${cp.status}, not COMPLETED${
          cp.status === 'DISCARDED' ? ': retention let its state go (start from a newer one or a savepoint; CHECKPOINT_RETENTION keeps more)' : ''
        }`,
      );
    if (cp.job.pipelineId !== pipelineId) throw new Refused('invalid', `checkpoint ${checkpointId} belongs to another pipeline`);
    const old = parsePlan(cp.job.plan);
    for (const [id, v] of Object.entries(plan.vertices)) {
      const was = old.vertices[id];
      if (!was) continue;
      if (v.parallelism > was.maxParallelism)
        throw new Refused('invalid', `${id}: parallelism ${v.parallelism} exceeds the checkpoint's maxParallelism ${was.maxParallelism}`);
      v.maxParallelism = was.maxParallelism;
    }
    return { jobId: cp.jobId, number: cp.number };
  }

  /** Moves a job through the lifecycle and keeps the in-memory state in step (in a step of the job's actor). */
  async move(job: ActiveJob, to: ActiveJob['state'], reason?: string, attempt?: number): Promise<void> {
    await this.lifecycle.transition(job.id, to, reason, attempt !== undefined ? { attempt } : {});
    job.state = to;
    if (attempt !== undefined) job.attempt = attempt;
  }

  private activeOr409(jobId: string): ActiveJob {
    const job = this.active.get(jobId);
    if (!job) throw new Refused('conflict', `job ${jobId} is not running`);
    return job;
  }

  async stop(jobId: string): Promise<void> {
    this.assertCoordinating();
    const job = this.activeOr409(jobId);
    await job.actor.run(async () => {
      if (job.state !== 'RUNNING') throw new Refused('conflict', `job ${jobId} is ${job.state}; only a RUNNING job can be stopped`);
      await this.move(job, 'STOPPING', 'stop with savepoint requested');
    });
    void this.stopWithSavepoint(job).catch((err) => this.logger.error({ jobId, error: (err as Error).message }, 'stop with savepoint failed'));
  }

  /** Takes the savepoint right after the checkpoint in flight, then stops the job, or goes back to RUNNING if it failed. */
  private async stopWithSavepoint(job: ActiveJob): Promise<void> {
    const gone = () => this.active.get(job.id) !== job || job.state !== 'STOPPING';
    await job.actor.until(() => !job.pending, { gone });
    const pending = await job.actor.run(() => (gone() ? undefined : this.checkpoints.trigger(job, 'SAVEPOINT', { stopAfter: true })));
    if (!pending) return;
    const result = await this.checkpoints.settled(pending);
    await job.actor.run(async () => {
      if (gone()) return;
      if (!result.ok) return this.move(job, 'RUNNING', `savepoint failed, job keeps running: ${result.reason}`);
      await this.scheduler.command(job.id, { type: 'stop', attempt: job.attempt });
      await this.end(job, 'STOPPED', `stopped with savepoint ${pending.number}`);
    });
  }

  async cancel(jobId: string): Promise<void> {
    this.assertCoordinating();
    const job = this.active.get(jobId);
    if (!job) {
      const row = await this.prisma.job.findUnique({ where: { id: jobId } });
      if (!row) throw new Refused('not-found', `no job ${jobId}`);
      throw new Refused('conflict', `job ${jobId} is already ${row.state}`);
    }
    await job.actor.run(() => (this.active.get(jobId) === job ? this.end(job, 'CANCELED', 'canceled by request') : undefined));
  }

  /** A checkpoint or savepoint asked for by hand: taken right after the one in flight, as Flink does. */
  async triggerCheckpoint(jobId: string, kind: 'MANUAL' | 'SAVEPOINT' = 'MANUAL') {
    this.assertCoordinating();
    const job = this.activeOr409(jobId);
    const refusal = () =>
      this.active.get(jobId) !== job || job.state !== 'RUNNING' || job.rescaling
        ? new Refused(
            'conflict',
            `job ${jobId} is ${job.state}${job.rescaling ? ' and rescaling (its checkpoint comes first)' : ''}; the ${kind === 'SAVEPOINT' ? 'savepoint' : 'checkpoint'} was not taken`,
          )
        : undefined;
    const refused = refusal();
    if (refused) throw refused;
    // Taken right after the checkpoint in flight; a periodic one the tick queued first goes before it, and so on.
    for (;;) {
      await job.actor.until(() => !job.pending, { gone: () => refusal() !== undefined });
      const taken = await job.actor.run(() => {
        const late = refusal();
        if (late) throw late;
        return job.pending ? undefined : this.checkpoints.trigger(job, kind);
      });
      if (taken) return taken;
    }
  }

  /** Ends a job for good (in a step of its actor): settles its sinks, fences its subtasks off, stops them, and deletes its keys. */
  async end(job: ActiveJob, to: 'STOPPED' | 'CANCELED' | 'FAILED' | 'FINISHED', reason: string): Promise<void> {
    this.active.delete(job.id);
    // Before the state says so: a job shown STOPPED or CANCELED has its sinks' output settled.
    if (to !== 'FINISHED')
      await this.settleSinks(job.id, job.attempt, job.graph.vertices).catch((err) =>
        this.logger.error({ jobId: job.id, error: (err as Error).message }, 'settling the sinks failed'),
      );
    await this.move(job, to, reason);
    await this.scheduler.fence(job.id, 'ended');
    await this.checkpoints.abandon(job, `job ${to.toLowerCase()}`);
    if (to !== 'FINISHED') await this.scheduler.stopAttempt(job, job.attempt);
    await this.scheduler.deleteJob(job.id, this.opts.keepEndedMs);
    void this.sweepWhenStopped(job.id).catch((err) =>
      this.logger.warn({ jobId: job.id, error: (err as Error).message }, 'deleting an ended job’s keys failed'),
    );
    this.metrics.resetRates(job.id);
    this.hooks.ended(job);
  }

  /**
   * A subtask still stopping when its job ended may have written a batch since (a channel comes back): once no
   * worker lists a subtask of the job any more (or after a while), what it wrote goes too.
   */
  private async sweepWhenStopped(jobId: string): Promise<void> {
    const deadline = Date.now() + SWEEP_WAIT_MS;
    while (Date.now() < deadline && (await listWorkers(this.redis, this.keys)).some((w) => w.subtasks.some((s) => s.jobId === jobId)))
      await new Promise((r) => setTimeout(r, 250));
    await this.scheduler.deleteJob(jobId, this.opts.keepEndedMs);
  }

  /**
   * A job that ends before its input does (canceled, failed, stopped) leaves its exactly-once sinks as a recovery
   * would find them: what a completed checkpoint covers is committed, the rest discarded, and the last attempt
   * fenced off (its subtasks may still be stopping). A stop's subtasks commit its savepoint themselves too; this
   * makes sure of it even when their commit failed. (A finished job's subtasks commit everything at their end.)
   */
  private async settleSinks(jobId: string, attempt: number, vertices: readonly Vertex[]): Promise<void> {
    const sinks = vertices.filter((v) => sinkDelivery(v) === 'exactly-once');
    if (!sinks.length) return;
    const last = await this.lastCompleted(jobId);
    for (const v of sinks) {
      // As a new attempt would take the sink: what a completed checkpoint covers is committed (a broker sink
      // publishes its outbox), the rest discarded.
      const sink = createSink(v, {
        index: 0,
        parallelism: 1,
        sink: { jobId, attempt: attempt + 1, index: 0, recoverFrom: last ?? 0 },
        redis: this.redis,
        keys: this.keys,
        databaseUrl: this.opts.sinkDatabaseUrl,
        deadLetter: () => {},
        connection: (name) => this.opts.connections.profile(name),
        logger: this.logger,
      });
      try {
        await sink.open();
      } finally {
        await sink.close();
      }
    }
  }

  /** A worker event: metrics are recorded as they come; everything else is a step of the job's actor. */
  async onEvent(e: WorkerEvent): Promise<void> {
    const job = this.active.get(e.jobId);
    if (e.type === 'metrics') {
      // An old attempt's last metrics would put its rates back after a recovery reset them.
      if (!job || e.attempt === job.attempt) this.metrics.record(e);
      return;
    }
    if (job) await job.actor.run(() => this.handle(job, e));
  }

  private async handle(job: ActiveJob, e: Exclude<WorkerEvent, { type: 'metrics' }>): Promise<void> {
    if (this.active.get(job.id) !== job || e.attempt !== job.attempt) return;
    const key = subtaskKey(e.vertexId, e.index);
    switch (e.type) {
      case 'running':
        job.running.add(key);
        job.restored.keyGroups += e.restoredKeyGroups;
        job.restored.bytes += e.restoredBytes;
        job.restored.ms = Math.max(job.restored.ms, e.restoreMs);
        await this.runWhenAllUp(job);
        return;
      case 'ack':
        return this.checkpoints.onAck(job, e);
      case 'decline':
        return this.checkpoints.onDecline(job, e.checkpointId, key, e.reason);
      case 'rescaled':
      case 'precopied':
        return this.hooks.rescale(job, e);
      case 'finished':
        job.finished.add(key);
        // A subtask that finished ran, whether or not its `running` came through: a job whose subtasks all ran
        // goes to RUNNING before it can finish, never from SCHEDULING (a transition the lifecycle refuses).
        job.running.add(key);
        await this.runWhenAllUp(job);
        await this.checkpoints.onFinished(job, key);
        if (job.subtasks.every((k) => job.finished.has(k))) await this.end(job, 'FINISHED', 'every source reached its end');
        return;
      case 'failed':
        if (job.state !== 'CREATED') await this.hooks.recover(job, `${key} failed: ${e.error}`, Date.now());
        return;
      case 'stopped':
        job.running.delete(key);
        // A subtask the plan keeps that stops (a stale barrier, its worker closing) is a failure, not an end.
        if (!plannedStop(job, e) && job.state !== 'CREATED')
          await this.hooks.recover(job, `${key} stopped although the plan keeps it (${stopDescription(e)})`, Date.now());
        return;
    }
  }

  /** Moves a scheduled or recovering job to RUNNING once every subtask of its attempt runs (in a step of its actor). */
  async runWhenAllUp(job: ActiveJob): Promise<void> {
    if (!allUp(job)) return;
    job.lastCheckpointAt = Date.now();
    const { keyGroups, bytes, ms } = job.restored;
    const restored = keyGroups || bytes ? `; restored ${keyGroups} key groups (${bytes} bytes) in ${ms} ms` : '';
    const recovered = job.state === 'RECOVERING';
    await this.move(job, 'RUNNING', `${recovered ? `recovered as attempt ${job.attempt}` : 'all subtasks running'}${restored}`);
    if (recovered) await this.hooks.recovered(job);
  }

  /** Normally a job's last `running` event moves it to RUNNING; this retries a transition that failed on the way (Postgres away). */
  retryTransitions(): void {
    for (const job of this.active.values())
      if (allUp(job))
        void job.actor
          .run(() => this.runWhenAllUp(job))
          .catch((err) => this.logger.warn({ jobId: job.id, error: (err as Error).message }, 'moving the job to RUNNING failed; retrying'));
  }

  emitMetrics(): void {
    for (const id of this.metrics.jobIds()) {
      const snap = this.metrics.snapshot(id);
      if (snap) this.emitter.emit(id, 'job:metrics', snap);
    }
  }
}
