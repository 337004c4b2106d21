import { RESCALABLE_STATES, type ScalingEvent as ScalingEventDto } from '@keyflow/api';
import { chainOf, operatorSpec, rescaledPlan } from '@keyflow/core';
import type { PrismaClient, ScalingEvent, ScalingStatus } from '@keyflow/db';
import type { Logger, RescaleSpec, WorkerEvent } from '@keyflow/runtime';
import { adoptPlan, subtaskKey, type ActiveJob } from '../jobs/activeJob.ts';
import { briefError, type CheckpointCoordinator } from '../checkpoints/checkpointCoordinator.ts';
import type { Emitter } from '../http/emitter.ts';
import type { JobManager } from '../jobs/jobManager.ts';
import { checkRescaleQuotas, subtasksOf, type Quotas } from '../jobs/quotas.ts';
import { Refused } from '../jobs/refusal.ts';
import type { MetricsAggregator } from '../observability/metrics.ts';
import type { Scheduler } from '../cluster/scheduler.ts';
import type { RecoveryCoordinator } from '../recovery/recoveryCoordinator.ts';

type RescaledEvent = Extract<WorkerEvent, { type: 'rescaled' }>;

/** How long a rescale waits for its pre-copy before it sends the barrier anyway (what is not copied then goes whole). */
const PRECOPY_WAIT_MS = 20_000;

export interface ScalingOptions {
  /** How long a rescale waits for free worker slots for its new subtasks before it is rolled back. */
  slotTimeoutMs: number;
  /** How long the rescaled subtasks may take to load the state handed to them, once the checkpoint completed. */
  restoreTimeoutMs: number;
  /** What one job may ask of the pool; a rescale asking for more is refused. */
  quotas: Quotas;
}

export function scalingDto(e: ScalingEvent): ScalingEventDto {
  const iso = (d: Date | null) => d?.toISOString() ?? null;
  return {
    id: e.id,
    jobId: e.jobId,
    vertexId: e.vertexId,
    chainVertices: e.chainVertices,
    fromParallelism: e.fromParallelism,
    toParallelism: e.toParallelism,
    status: e.status,
    requestedAt: e.requestedAt.toISOString(),
    subtasksStartedAt: iso(e.subtasksStartedAt),
    alignedAt: iso(e.alignedAt),
    snapshottedAt: iso(e.snapshottedAt),
    restoredAt: iso(e.restoredAt),
    runningAt: iso(e.runningAt),
    checkpointId: e.checkpointId,
    checkpointNumber: e.checkpointNumber,
    keyGroupsMoved: e.keyGroupsMoved,
    bytesMoved: Number(e.bytesMoved),
    pauseMs: e.pauseMs,
    reason: e.reason,
    resumesId: e.resumesId,
  };
}

/** Whether a job is recovering (read afresh: the state changes under an await). */
const recovering = (job: ActiveJob) => job.state === 'RECOVERING';
/** Rescales to one target that recoveries may interrupt in a row before the request is given up. */
const MAX_INTERRUPTIONS = 3;

/**
 * Live rescale of one operator's chain in one barrier (DESIGN §6): starts the new subtasks, triggers a RESCALE
 * checkpoint that carries the new parallelism, and follows the subtasks as they re-route, load the key groups
 * their new ranges gain, and go on. What the user asked for is state (the job's desired parallelism): requests
 * are queued as scaling events in Postgres and run one after another, in order; a rescale that a recovery
 * interrupts is carried out once the job runs again, also after a restart of the control plane.
 */
export class ScalingCoordinator {
  /** Per job: the loop running its queued scaling events, and whether it should look again when it ends. */
  private readonly draining = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  /** Per job: the scaling event a recovery interrupted last, and how many in a row were. */
  private readonly interrupted = new Map<string, { id: number; count: number }>();
  private readonly rescaled = new Map<number, Map<string, RescaledEvent>>();
  private readonly precopied = new Map<number, Set<number>>();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly scheduler: Scheduler,
    private readonly checkpoints: CheckpointCoordinator,
    private readonly jobs: JobManager,
    private readonly recovery: RecoveryCoordinator,
    private readonly metrics: MetricsAggregator,
    private readonly emitter: Emitter,
    private readonly logger: Logger,
    private readonly opts: ScalingOptions,
  ) {}

  /** Validates a request, records it as the job's desired parallelism and queues one scaling event per operator. */
  async request(jobId: string, parallelism: Record<string, number>): Promise<ScalingEvent[]> {
    this.jobs.assertCoordinating();
    const job = this.jobs.active.get(jobId);
    if (!job || !RESCALABLE_STATES.includes(job.state))
      throw new Refused(
        'conflict',
        `job ${jobId} is ${job?.state ?? 'not running'}; a rescale can be asked for while it is scheduling, running, rescaling or recovering`,
      );
    for (const [vertexId, p] of Object.entries(parallelism)) {
      const chain = chainOf(job.chains, vertexId);
      if (!chain) throw new Refused('not-found', `job ${jobId} has no operator '${vertexId}'`);
      const maxP = Math.min(...chain.vertices.map((v) => job.plan.vertices[v.id]!.maxParallelism));
      if (p < 1 || p > maxP)
        throw new Refused(
          'invalid',
          `parallelism of ${vertexId} must be between 1 and ${maxP} (its maxParallelism${chain.vertices.length > 1 ? ' within its chain' : ''})`,
        );
      const ids = new Set(chain.vertices.map((v) => v.id));
      const forward = job.graph.edges.find((e) => e.partitioning === 'forward' && ids.has(e.from) !== ids.has(e.to));
      if (forward)
        throw new Refused(
          'invalid',
          `${vertexId} is joined to ${ids.has(forward.from) ? forward.to : forward.from} by a forward edge, which needs equal parallelism on both ends: rescale cannot change one side alone`,
        );
    }
    const desired = { ...job.desired };
    for (const [vertexId, p] of Object.entries(parallelism)) for (const v of chainOf(job.chains, vertexId)!.vertices) desired[v.id] = p;
    checkRescaleQuotas(
      parallelism,
      (vertexId) => job.desired[vertexId] ?? chainOf(job.chains, vertexId)!.parallelism,
      {
        before: subtasksOf(job.chains, (c) => job.desired[c.id] ?? c.parallelism),
        after: subtasksOf(job.chains, (c) => desired[c.id] ?? c.parallelism),
      },
      this.opts.quotas,
    );
    const events = await this.prisma.$transaction(async (tx) => {
      await tx.job.update({ where: { id: jobId }, data: { desiredParallelism: desired } });
      const out: ScalingEvent[] = [];
      for (const [vertexId, p] of Object.entries(parallelism)) {
        const chain = chainOf(job.chains, vertexId)!;
        out.push(
          await tx.scalingEvent.create({
            data: { jobId, vertexId, chainVertices: chain.vertices.map((v) => v.id), fromParallelism: chain.parallelism, toParallelism: p },
          }),
        );
      }
      return out;
    });
    await job.actor.run(() => this.setDesired(job, desired));
    for (const e of events) this.emitter.emit(jobId, 'scaling:event', scalingDto(e));
    this.restartIfStuckStarting(job);
    this.kick(jobId);
    return events;
  }

  /**
   * A job whose start is stalled (a subtask no worker takes: too few slots) that is asked to go down restarts at once
   * at the lower parallelism, rather than after its start timeout: a rescale needs a running job, and going down is
   * the remedy a user reaches for. At most once per stalled attempt, so asking again and again costs one restart.
   */
  private restartIfStuckStarting(job: ActiveJob): void {
    // In a step of the job's actor: the job's state and stall are only read whole there.
    void job.actor
      .run(async () => {
        if (this.jobs.active.get(job.id) !== job || (job.state !== 'SCHEDULING' && job.state !== 'RECOVERING') || !job.stall) return;
        const down = job.chains.filter((c) => (job.desired[c.id] ?? c.parallelism) < c.parallelism);
        if (!down.length) return;
        const what = down.map((c) => `${c.id} ×${c.parallelism} → ×${job.desired[c.id]}`).join(', ');
        await this.recovery.recover(job, `restarts at the lower parallelism asked for (${what}): its subtasks could not all start`);
      })
      .catch((err) => this.logger.error({ jobId: job.id, error: (err as Error).stack }, 'restarting at the lower parallelism failed'));
  }

  /**
   * Makes every active job converge to what was asked for: runs queued scaling events (also those a control plane
   * before this one accepted), and asks again for a parallelism a recovery kept the job from reaching.
   */
  reconcile(all = false): void {
    for (const job of this.jobs.active.values())
      if (all || (job.state === 'RUNNING' && (this.interrupted.has(job.id) || job.chains.some((c) => job.desired[c.id] !== c.parallelism))))
        this.kick(job.id);
  }

  /** A rescale's worker events, in a step of the job's actor (which then wakes the rescale waiting for them). */
  onWorkerEvent(e: Extract<WorkerEvent, { type: 'rescaled' | 'precopied' }>): void {
    if (e.type === 'rescaled') this.onRescaled(e);
    else this.onPrecopied(e.scalingId, e.index);
  }

  private onPrecopied(scalingId: number, index: number): void {
    let got = this.precopied.get(scalingId);
    if (!got) this.precopied.set(scalingId, (got = new Set()));
    got.add(index);
  }

  private onRescaled(e: RescaledEvent): void {
    let got = this.rescaled.get(e.scalingId);
    if (!got) this.rescaled.set(e.scalingId, (got = new Map()));
    got.set(subtaskKey(e.vertexId, e.index), e);
  }

  /** Starts the job's queue unless it runs; a running one looks again when it is done. */
  private kick(jobId: string): void {
    if (this.draining.has(jobId)) return void this.again.add(jobId);
    const run = this.drain(jobId)
      .catch((err) => this.logger.error({ jobId, error: (err as Error).stack }, 'the rescale queue failed'))
      .finally(() => {
        this.draining.delete(jobId);
        if (this.again.delete(jobId)) this.kick(jobId);
      });
    this.draining.set(jobId, run);
  }

  /** Runs the job's queued scaling events in order, then queues one more if the job is not where it was asked to be. */
  private async drain(jobId: string): Promise<void> {
    for (;;) {
      if (!this.jobs.coordinating) return;
      const job = this.jobs.active.get(jobId);
      const next = await this.prisma.scalingEvent.findFirst({ where: { jobId, status: 'QUEUED' }, orderBy: { id: 'asc' } });
      if (!job) {
        if (next) await this.update(next.id, { status: 'FAILED', reason: 'the job ended before the rescale could start' });
        if (next) continue;
        return;
      }
      if (next) {
        await this.run(job, next).catch(async (err) => {
          this.logger.debug({ jobId, scalingId: next.id, error: (err as Error).stack }, 'rescale failed: stack');
          await this.update(next.id, { status: 'FAILED', reason: briefError(err) }).catch(() => {});
        });
        continue;
      }
      if (!(await this.converge(job))) return;
    }
  }

  /** Queues a rescale for each chain that does not run at the parallelism asked for; false when none is needed. */
  private async converge(job: ActiveJob): Promise<boolean> {
    if (job.state !== 'RUNNING' || this.jobs.active.get(job.id) !== job) return false;
    await this.settleInterrupted(job);
    let queued = false;
    for (const chain of job.chains) {
      const want = job.desired[chain.id];
      if (want === undefined || want === chain.parallelism) continue;
      const was = this.interrupted.get(job.id);
      const reason = was
        ? `resumes scaling event ${was.id}, which a recovery interrupted: ${chain.id} runs at ×${chain.parallelism}, ×${want} was asked for`
        : `${chain.id} runs at ×${chain.parallelism}, ×${want} was asked for`;
      const event = await this.prisma.scalingEvent.create({
        data: {
          jobId: job.id,
          vertexId: chain.id,
          chainVertices: chain.vertices.map((v) => v.id),
          fromParallelism: chain.parallelism,
          toParallelism: want,
          reason,
          resumesId: was?.id ?? null,
        },
      });
      this.emitter.emit(job.id, 'scaling:event', scalingDto(event));
      queued = true;
    }
    return queued;
  }

  /**
   * A recovery can restart the job at the parallelism an interrupted rescale asked for: its checkpoint completed
   * and the plan was saved, but the loss came before the new subtasks ran; or the rescale went down, and the new
   * attempt started there. Nothing is left to carry out then; the history says the rescale took effect through the
   * recovery instead of leaving it interrupted for good.
   */
  private async settleInterrupted(job: ActiveJob): Promise<void> {
    const was = this.interrupted.get(job.id);
    if (!was) return;
    const event = await this.prisma.scalingEvent.findUnique({ where: { id: was.id } });
    const chain = event && chainOf(job.chains, event.vertexId);
    if (!event || !chain || chain.parallelism !== event.toParallelism) return;
    this.interrupted.delete(job.id);
    const done = await this.prisma.scalingEvent.create({
      data: {
        jobId: job.id,
        vertexId: chain.id,
        chainVertices: chain.vertices.map((v) => v.id),
        fromParallelism: event.fromParallelism,
        toParallelism: event.toParallelism,
        status: 'COMPLETED',
        runningAt: new Date(),
        reason: `resumes scaling event ${event.id}, which a recovery interrupted: the recovery restarted ${chain.id} at ×${chain.parallelism}`,
        resumesId: event.id,
      },
    });
    this.emitter.emit(job.id, 'scaling:event', scalingDto(done));
    this.logger.info({ jobId: job.id, scalingId: done.id, resumes: event.id, vertexId: chain.id }, 'rescale carried out by the recovery');
  }

  private setDesired(job: ActiveJob, desired: Record<string, number>): void {
    job.desired = desired;
    this.emitter.emit(job.id, 'job:desired', { jobId: job.id, desiredParallelism: desired });
  }

  /**
   * Gives up what a rescale to `target` asked for one chain (the pool cannot give the slots, or recoveries keep
   * interrupting it); in a step of the job's actor. A request made since stands: the user's latest word wins over an
   * older rescale's failure (asked ×4, then ×2 while ×4 waited for slots: ×2 it is).
   */
  private async giveUp(job: ActiveJob, chainId: string, target: number): Promise<void> {
    const chain = job.chains.find((c) => c.id === chainId);
    if (!chain || chain.vertices.some((v) => (job.desired[v.id] ?? chain.parallelism) !== target)) return;
    const desired = { ...job.desired };
    for (const v of chain.vertices) desired[v.id] = chain.parallelism;
    await this.prisma.job.update({ where: { id: job.id }, data: { desiredParallelism: desired } });
    this.setDesired(job, desired);
  }

  /**
   * A recovery came first: the event is INTERRUPTED and the job goes on to what was asked once it runs again,
   * unless recoveries interrupted it too often in a row (then it is given up, and says so).
   */
  private async interrupt(job: ActiveJob, event: ScalingEvent, what: string): Promise<void> {
    const was = this.interrupted.get(job.id);
    const count = was && was.count >= 1 ? was.count + 1 : 1;
    if (count > MAX_INTERRUPTIONS) {
      this.interrupted.delete(job.id);
      await job.actor.run(() => this.giveUp(job, chainOf(job.chains, event.vertexId)?.id ?? event.vertexId, event.toParallelism));
      await this.update(event.id, {
        status: 'FAILED',
        reason: `${what}; given up after ${MAX_INTERRUPTIONS} recoveries in a row interrupted it: ask again`,
      });
      return;
    }
    this.interrupted.set(job.id, { id: event.id, count });
    await this.update(event.id, { status: 'INTERRUPTED', reason: `${what}; the job goes on to ×${event.toParallelism} once it runs again` });
  }

  private async update(id: number, data: Partial<Omit<ScalingEvent, 'id' | 'jobId'>> & { status?: ScalingStatus }): Promise<ScalingEvent> {
    const event = await this.prisma.scalingEvent.update({ where: { id }, data });
    this.emitter.emit(event.jobId, 'scaling:event', scalingDto(event));
    // Each phase once (the outcome of a completed one is logged with its figures where it completes).
    const phase = Object.keys(data)
      .filter((k) => k.endsWith('At'))
      .join(', ');
    if (data.status && data.status !== 'COMPLETED')
      this.logger[data.status === 'FAILED' ? 'error' : data.status === 'ROLLED_BACK' || data.status === 'INTERRUPTED' ? 'warn' : 'info'](
        { jobId: event.jobId, scalingId: id, vertexId: event.vertexId, from: event.fromParallelism, to: event.toParallelism, reason: event.reason },
        `rescale ${data.status.toLowerCase().replaceAll('_', ' ')}`,
      );
    else if (phase) this.logger.info({ jobId: event.jobId, scalingId: id, vertexId: event.vertexId, phase }, 'rescale phase');
    return event;
  }

  /** Waits (woken by the job's steps, not polling) until `check` holds; false at the deadline or once the attempt is over. */
  private waitUntil(check: () => boolean, timeoutMs: number, job: ActiveJob): Promise<boolean> {
    const attempt = job.attempt;
    return job.actor.until(check, { timeoutMs, gone: () => this.jobs.active.get(job.id) !== job || job.attempt !== attempt });
  }

  private async run(job: ActiveJob, event: ScalingEvent): Promise<void> {
    // Wait for the job to be RUNNING. A checkpoint in flight may go on meanwhile: new subtasks start and the pre-copy
    // runs beside it, and only the rescale's own barrier waits for it to settle.
    const ended = () => !this.jobs.coordinating || this.jobs.active.get(job.id) !== job;
    let held = false;
    while (!held) {
      await job.actor.until(() => job.state === 'RUNNING' && !job.rescaling, { gone: ended });
      if (!this.jobs.coordinating) return;
      if (ended()) {
        await this.update(event.id, { status: 'FAILED', reason: 'the job ended before the rescale could start' });
        return;
      }
      // No periodic checkpoint starts from here until the rescale's is done.
      held = await job.actor.run(() => (job.state === 'RUNNING' && !job.rescaling ? (job.rescaling = true) : false));
    }
    const attempt = job.attempt;
    try {
      await this.rescale(job, event);
    } catch (err) {
      // A recovery that began meanwhile (its transition raced this rescale's) interrupts it; anything else fails it.
      if (this.jobs.active.get(job.id) === job && (job.attempt !== attempt || recovering(job)))
        await this.interrupt(job, event, `the job recovered during the rescale (${briefError(err)})`);
      else throw err;
    } finally {
      await job.actor.run(() => void (job.rescaling = false));
    }
  }

  /** A job's state changes in a step of its actor, unless its attempt is over meanwhile (then not at all). */
  private step(job: ActiveJob, attempt: number, fn: () => Promise<unknown>): Promise<boolean> {
    return job.actor.run(async () => {
      if (this.jobs.active.get(job.id) !== job || job.attempt !== attempt) return false;
      await fn();
      return true;
    });
  }

  private async rescale(job: ActiveJob, event: ScalingEvent): Promise<void> {
    const chain = chainOf(job.chains, event.vertexId)!;
    const attempt = job.attempt;
    // A recovery (a worker lost mid-rescale) starts a new attempt from a completed checkpoint: this rescale is over.
    const superseded = () => this.jobs.active.get(job.id) !== job || job.attempt !== attempt;
    const from = chain.parallelism;
    const to = event.toParallelism;
    // Already there (a restart started it there, or a rescale before this one): the event keeps the parallelism it
    // was asked from, so the history says what changed.
    if (from === to) {
      await this.update(event.id, {
        status: 'COMPLETED',
        runningAt: new Date(),
        pauseMs: 0,
        reason: `already at parallelism ${to}`,
      });
      return;
    }
    if (
      !(await this.step(job, attempt, () =>
        this.jobs.move(job, 'RESCALING', `rescale ${event.vertexId} from ${from} to ${to} (scaling event ${event.id})`),
      ))
    )
      return this.interrupt(job, event, 'the job recovered before the rescale began');
    await this.update(event.id, { fromParallelism: from });

    const plan = rescaledPlan(job.plan, chain, to, event.id);
    const spec: RescaleSpec = { scalingId: event.id, chainId: chain.id, parallelism: to };
    const added = Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

    if (added.length) {
      await this.update(event.id, { status: 'WAITING_FOR_SLOTS' });
      await this.scheduler.enqueueSubtasks(job, chain, added, { plan, joinRescale: event.id });
      const started = await this.waitUntil(() => added.every((i) => job.running.has(subtaskKey(chain.id, i))), this.opts.slotTimeoutMs, job);
      if (!started && superseded()) return this.interrupt(job, event, 'the job recovered while the rescale waited for slots');
      if (!started) {
        const up = added.filter((i) => job.running.has(subtaskKey(chain.id, i))).length;
        const reason = `rolled back: waited ${this.opts.slotTimeoutMs} ms for ${added.length} free worker slot${added.length === 1 ? '' : 's'}; ${up} of the new subtasks started`;
        const rolledBack = await this.step(job, attempt, async () => {
          await this.scheduler.command(job.id, { type: 'rescale-rollback', attempt: job.attempt, scalingId: event.id });
          await this.scheduler.removeWaiting(job, chain, added, event.id);
          for (const i of added) job.running.delete(subtaskKey(chain.id, i));
          await this.jobs.move(job, 'RUNNING', `rescale of ${event.vertexId} ${reason}`);
          await this.giveUp(job, chain.id, to);
        });
        if (!rolledBack) return this.interrupt(job, event, 'the job recovered while the rescale waited for slots');
        await this.update(event.id, { status: 'ROLLED_BACK', reason });
        return;
      }
    }
    await this.update(event.id, { status: 'ALIGNING', ...(added.length && { subtasksStartedAt: new Date() }) });

    if (chain.vertices.some((v) => operatorSpec(v.type)?.kind === 'keyed')) {
      // Pre-copy: the old owners send what will leave them while they run on; the barrier then moves only what changed.
      await this.scheduler.command(job.id, { type: 'rescale-prepare', attempt: job.attempt, rescale: spec });
      const copied = () => this.precopied.get(event.id) ?? new Set<number>();
      await this.waitUntil(() => Array.from({ length: from }, (_, i) => i).every((i) => copied().has(i)), PRECOPY_WAIT_MS, job);
      this.precopied.delete(event.id);
      if (superseded()) return this.interrupt(job, event, 'the job recovered during the pre-copy');
    }

    // One checkpoint at a time: the one in flight (started before this rescale) settles first.
    await job.actor.until(() => !job.pending, { gone: superseded });
    const pending = await job.actor.run(() =>
      superseded() || job.pending ? undefined : this.checkpoints.trigger(job, 'RESCALE', { rescale: spec }),
    );
    if (!pending) return this.interrupt(job, event, 'the job recovered while the rescale waited for a checkpoint in flight');
    await this.update(event.id, { checkpointId: pending.id, checkpointNumber: pending.number });
    const result = await this.checkpoints.settled(pending);
    if (!result.ok || superseded()) {
      const what = `rescale checkpoint ${pending.number} failed: ${result.ok ? 'the job recovered' : result.reason}`;
      await this.recovery.failOver(job, attempt, `rescale of ${event.vertexId} failed; recovering at the last completed checkpoint`, Date.now());
      return this.interrupt(job, event, what);
    }
    const snapshottedAt = new Date();
    // From here the job runs at the new parallelism.
    const applied = await this.step(job, attempt, async () => {
      for (const gone of adoptPlan(job, plan)) {
        job.running.delete(subtaskKey(gone.chainId, gone.index));
        for (const v of gone.vertexIds) this.metrics.forgetSubtask(job.id, v, gone.index);
      }
    });
    if (!applied) return this.interrupt(job, event, 'the job recovered right after the rescale checkpoint completed');
    const acks = await this.prisma.checkpointAck.findMany({ where: { checkpointId: pending.id, vertexId: { in: chain.vertices.map((v) => v.id) } } });
    // The operator's pause begins with its first subtask's alignment.
    const firstAligned = Math.min(...acks.map((a) => a.ackedAt.getTime() - a.asyncMs - a.syncMs));
    await this.prisma.job.update({ where: { id: job.id }, data: { plan: plan as object } });
    await this.update(event.id, { alignedAt: new Date(firstAligned), snapshottedAt });

    const wanted = Array.from({ length: to }, (_, i) => subtaskKey(chain.id, i));
    const got = () => this.rescaled.get(event.id) ?? new Map<string, RescaledEvent>();
    const restored = await this.waitUntil(() => wanted.every((k) => got().has(k)), this.opts.restoreTimeoutMs, job);
    if (!restored || superseded()) {
      this.rescaled.delete(event.id);
      if (superseded()) return this.interrupt(job, event, 'the job recovered before the rescaled subtasks were running');
      await this.update(event.id, { status: 'FAILED', reason: `subtasks did not load their state within ${this.opts.restoreTimeoutMs} ms` });
      await this.recovery.failOver(job, attempt, `rescale of ${event.vertexId} did not finish restoring`, Date.now());
      return;
    }
    const events = [...got().values()];
    this.rescaled.delete(event.id);
    this.interrupted.delete(job.id);
    // Nothing of the rescale is left to read: channels of subtasks it took away or replaced, its handovers.
    await this.scheduler
      .deleteStale(job.id, job.attempt, job.graph, job.plan)
      .catch((err) => this.logger.warn({ jobId: job.id, error: (err as Error).message }, 'deleting what the rescale left failed'));
    // The moved key groups were processed by nobody from the first old owner's alignment until the last new owner loaded them.
    const firstAlignedAt = Math.min(firstAligned, ...events.flatMap((e) => (e.alignedAt === undefined ? [] : [e.alignedAt])));
    const restoredAt = Math.max(...events.map((e) => e.runningAt));
    const pauseMs = Math.max(0, ...events.map((e) => e.pauseMs), restoredAt - firstAlignedAt);
    if (!(await this.step(job, attempt, () => this.jobs.move(job, 'RUNNING', `rescaled ${event.vertexId} from ${from} to ${to}`))))
      return this.interrupt(job, event, 'the job recovered right after the rescale');
    this.logger.info({ jobId: job.id, scalingId: event.id, vertexId: event.vertexId, from, to, pauseMs }, 'rescaled');
    await this.update(event.id, {
      status: 'COMPLETED',
      restoredAt: new Date(restoredAt),
      runningAt: new Date(),
      keyGroupsMoved: events.reduce((n, e) => n + e.keyGroupsLoaded, 0),
      bytesMoved: BigInt(events.reduce((n, e) => n + e.bytesLoaded, 0)),
      pauseMs,
    });
  }
}
