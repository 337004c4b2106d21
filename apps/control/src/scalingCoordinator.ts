import type { ScalingEvent as ScalingEventDto } from '@keyflow/api';
import { buildChains, chainOf, operatorSpec, type JobPlan } from '@keyflow/core';
import type { PrismaClient, ScalingEvent, ScalingStatus } from '@keyflow/db';
import type { RescaleSpec, WorkerEvent } from '@keyflow/runtime';
import { subtaskKey, type ActiveJob } from './activeJobs.ts';
import type { CheckpointCoordinator } from './checkpointCoordinator.ts';
import type { Emitter } from './emitter.ts';
import { RequestError, type JobManager } from './jobManager.ts';
import type { MetricsAggregator } from './metrics.ts';
import type { Scheduler } from './scheduler.ts';

type RescaledEvent = Extract<WorkerEvent, { type: 'rescaled' }>;

/** How long a rescale waits for its pre-copy before it sends the barrier anyway (what is not copied then goes whole). */
const PRECOPY_WAIT_MS = 20_000;

export interface ScalingOptions {
  /** How long a rescale waits for free worker slots for its new subtasks before it is rolled back. */
  slotTimeoutMs: number;
  /** How long the rescaled subtasks may take to load the state handed to them, once the checkpoint completed. */
  restoreTimeoutMs: number;
  log: (msg: string, extra?: object) => void;
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
    keyGroupsMoved: e.keyGroupsMoved,
    bytesMoved: Number(e.bytesMoved),
    pauseMs: e.pauseMs,
    reason: e.reason,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Live rescale of one operator's chain in one barrier (DESIGN §6): starts the new subtasks, triggers a RESCALE
 * checkpoint that carries the new parallelism, and follows the subtasks as they re-route, load the key groups
 * their new ranges gain, and go on. Requests for one job run one after another, in order.
 */
export class ScalingCoordinator {
  private readonly queues = new Map<string, Promise<void>>();
  private readonly rescaled = new Map<number, Map<string, RescaledEvent>>();
  private readonly precopied = new Map<number, Set<number>>();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly scheduler: Scheduler,
    private readonly checkpoints: CheckpointCoordinator,
    private readonly jobs: JobManager,
    private readonly metrics: MetricsAggregator,
    private readonly emitter: Emitter,
    private readonly opts: ScalingOptions,
  ) {}

  /** Validates and queues rescales; each operator becomes one scaling event. */
  async request(jobId: string, parallelism: Record<string, number>): Promise<ScalingEvent[]> {
    this.jobs.assertCoordinating();
    const job = this.jobs.active.get(jobId);
    if (!job || !['RUNNING', 'RESCALING'].includes(job.state))
      throw new RequestError(409, `job ${jobId} is ${job?.state ?? 'not running'}; only a running job can be rescaled`);
    const events: ScalingEvent[] = [];
    for (const [vertexId, p] of Object.entries(parallelism)) {
      const chain = chainOf(job.chains, vertexId);
      if (!chain) throw new RequestError(404, `job ${jobId} has no operator '${vertexId}'`);
      const maxP = Math.min(...chain.vertices.map((v) => job.plan.vertices[v.id]!.maxParallelism));
      if (p < 1 || p > maxP)
        throw new RequestError(422, `parallelism of ${vertexId} must be between 1 and ${maxP} (its maxParallelism${chain.vertices.length > 1 ? ' within its chain' : ''})`);
      const ids = new Set(chain.vertices.map((v) => v.id));
      const forward = job.graph.edges.find((e) => e.partitioning === 'forward' && ids.has(e.from) !== ids.has(e.to));
      if (forward)
        throw new RequestError(
          422,
          `${vertexId} is joined to ${ids.has(forward.from) ? forward.to : forward.from} by a forward edge, which needs equal parallelism on both ends: rescale cannot change one side alone`,
        );
    }
    for (const [vertexId, p] of Object.entries(parallelism)) {
      const chain = chainOf(job.chains, vertexId)!;
      const event = await this.prisma.scalingEvent.create({
        data: { jobId, vertexId, chainVertices: chain.vertices.map((v) => v.id), fromParallelism: chain.parallelism, toParallelism: p },
      });
      this.emitter.emit(jobId, 'scaling:event', scalingDto(event));
      events.push(event);
      const previous = this.queues.get(jobId) ?? Promise.resolve();
      const next = previous.then(() =>
        this.run(job, event).catch(async (err) => {
          this.opts.log('rescale failed', { jobId, scalingId: event.id, error: (err as Error).stack });
          await this.update(event.id, { status: 'FAILED', reason: (err as Error).message }).catch(() => {});
        }),
      );
      this.queues.set(jobId, next);
    }
    return events;
  }

  onPrecopied(scalingId: number, index: number): void {
    let got = this.precopied.get(scalingId);
    if (!got) this.precopied.set(scalingId, (got = new Set()));
    got.add(index);
  }

  onRescaled(e: RescaledEvent): void {
    let got = this.rescaled.get(e.scalingId);
    if (!got) this.rescaled.set(e.scalingId, (got = new Map()));
    got.set(subtaskKey(e.vertexId, e.index), e);
  }

  private async update(id: number, data: Partial<Omit<ScalingEvent, 'id' | 'jobId'>> & { status?: ScalingStatus }): Promise<ScalingEvent> {
    const event = await this.prisma.scalingEvent.update({ where: { id }, data });
    this.emitter.emit(event.jobId, 'scaling:event', scalingDto(event));
    return event;
  }

  private async waitUntil(check: () => boolean, timeoutMs: number, job: ActiveJob): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    const attempt = job.attempt;
    while (!check()) {
      if (Date.now() > deadline || this.jobs.active.get(job.id) !== job || job.attempt !== attempt) return false;
      await sleep(50);
    }
    return true;
  }

  private async run(job: ActiveJob, event: ScalingEvent): Promise<void> {
    // Wait for the job to be RUNNING with no checkpoint in flight: a rescale is a checkpoint of its own.
    for (;;) {
      if (this.jobs.active.get(job.id) !== job) {
        await this.update(event.id, { status: 'FAILED', reason: 'the job ended before the rescale could start' });
        return;
      }
      if (job.state === 'RUNNING' && !job.pending && !job.rescaling) break;
      if (job.pending) await this.checkpoints.settled(job.pending);
      else await sleep(50);
    }
    // Taken with no await since the check above, so no periodic checkpoint can slip in before the rescale's.
    job.rescaling = true;
    try {
      await this.rescale(job, event);
    } finally {
      job.rescaling = false;
    }
  }

  private async rescale(job: ActiveJob, event: ScalingEvent): Promise<void> {
    const chain = chainOf(job.chains, event.vertexId)!;
    const attempt = job.attempt;
    // A recovery (a worker lost mid-rescale) starts a new attempt from a completed checkpoint: the rescale is over.
    const superseded = () => this.jobs.active.get(job.id) !== job || job.attempt !== attempt;
    const from = chain.parallelism;
    const to = event.toParallelism;
    if (from === to) {
      await this.update(event.id, { status: 'COMPLETED', fromParallelism: from, runningAt: new Date(), pauseMs: 0, reason: `already at parallelism ${to}` });
      return;
    }
    await this.jobs.move(job, 'RESCALING', `rescale ${event.vertexId} from ${from} to ${to} (scaling event ${event.id})`);
    await this.update(event.id, { fromParallelism: from });

    const plan: JobPlan = { vertices: { ...job.plan.vertices } };
    for (const v of chain.vertices) plan.vertices[v.id] = { ...plan.vertices[v.id]!, parallelism: to };
    const spec: RescaleSpec = { scalingId: event.id, chainId: chain.id, parallelism: to };
    const added = Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

    if (added.length) {
      await this.update(event.id, { status: 'WAITING_FOR_SLOTS' });
      await this.scheduler.enqueueSubtasks(job, chain, added, { plan, joinRescale: event.id });
      const started = await this.waitUntil(() => added.every((i) => job.running.has(subtaskKey(chain.id, i))), this.opts.slotTimeoutMs, job);
      if (!started && superseded()) {
        await this.update(event.id, { status: 'FAILED', reason: 'the job recovered while the rescale waited for slots' });
        return;
      }
      if (!started) {
        const up = added.filter((i) => job.running.has(subtaskKey(chain.id, i))).length;
        await this.scheduler.command(job.id, { type: 'rescale-rollback', attempt: job.attempt, scalingId: event.id });
        await this.scheduler.removeWaiting(job, chain, added, event.id);
        for (const i of added) job.running.delete(subtaskKey(chain.id, i));
        const reason = `rolled back: waited ${this.opts.slotTimeoutMs} ms for ${added.length} free worker slots, ${up} became free`;
        if (this.jobs.active.get(job.id) === job) await this.jobs.move(job, 'RUNNING', `rescale of ${event.vertexId} ${reason}`);
        await this.update(event.id, { status: 'ROLLED_BACK', reason });
        return;
      }
    }
    await this.update(event.id, { status: 'ALIGNING', subtasksStartedAt: new Date() });

    if (chain.vertices.some((v) => operatorSpec(v.type)?.kind === 'keyed')) {
      // Pre-copy: the old owners send what will leave them while they run on; the barrier then moves only what changed.
      await this.scheduler.command(job.id, { type: 'rescale-prepare', attempt: job.attempt, rescale: spec });
      const copied = () => this.precopied.get(event.id) ?? new Set<number>();
      await this.waitUntil(() => Array.from({ length: from }, (_, i) => i).every((i) => copied().has(i)), PRECOPY_WAIT_MS, job);
      this.precopied.delete(event.id);
      if (superseded()) {
        await this.update(event.id, { status: 'FAILED', reason: 'the job recovered during the rescale' });
        return;
      }
    }

    const pending = await this.checkpoints.trigger(job, 'RESCALE', { rescale: spec });
    await this.update(event.id, { checkpointId: pending.id });
    const result = await this.checkpoints.settled(pending);
    if (!result.ok || superseded()) {
      await this.update(event.id, { status: 'FAILED', reason: `rescale checkpoint ${pending.number} failed: ${result.ok ? 'the job recovered' : result.reason}` });
      if (!superseded()) await this.jobs.recover(job, `rescale of ${event.vertexId} failed; recovering at the last completed checkpoint`);
      return;
    }
    const snapshottedAt = new Date();
    const acks = await this.prisma.checkpointAck.findMany({ where: { checkpointId: pending.id, vertexId: { in: chain.vertices.map((v) => v.id) } } });
    const alignedTimes = acks.map((a) => a.ackedAt.getTime() - a.asyncMs - a.syncMs);
    const alignedAt = new Date(Math.max(...alignedTimes));
    const firstAligned = Math.min(...alignedTimes);

    // From here the job runs at the new parallelism.
    job.plan = plan;
    job.chains = buildChains(job.graph, plan);
    job.subtasks = job.chains.flatMap((c) => Array.from({ length: c.parallelism }, (_, i) => subtaskKey(c.id, i)));
    for (let i = to; i < from; i++) {
      job.running.delete(subtaskKey(chain.id, i));
      for (const v of chain.vertices) this.metrics.forgetSubtask(job.id, v.id, i);
    }
    await this.prisma.job.update({ where: { id: job.id }, data: { plan: plan as object } });
    await this.update(event.id, { alignedAt, snapshottedAt });

    const wanted = Array.from({ length: to }, (_, i) => subtaskKey(chain.id, i));
    const got = () => this.rescaled.get(event.id) ?? new Map<string, RescaledEvent>();
    const restored = await this.waitUntil(() => wanted.every((k) => got().has(k)), this.opts.restoreTimeoutMs, job);
    if (!restored || superseded()) {
      await this.update(event.id, {
        status: 'FAILED',
        reason: superseded() ? 'the job recovered before the rescaled subtasks were running' : `subtasks did not load their state within ${this.opts.restoreTimeoutMs} ms`,
      });
      if (!superseded()) await this.jobs.recover(job, `rescale of ${event.vertexId} did not finish restoring`);
      return;
    }
    const events = [...got().values()];
    this.rescaled.delete(event.id);
    // The moved key groups were processed by nobody from the first old owner's alignment until the last new owner loaded them.
    const firstAlignedAt = Math.min(firstAligned, ...events.flatMap((e) => (e.alignedAt === undefined ? [] : [e.alignedAt])));
    const restoredAt = Math.max(...events.map((e) => e.runningAt));
    const pauseMs = Math.max(0, ...events.map((e) => e.pauseMs), restoredAt - firstAlignedAt);
    await this.jobs.move(job, 'RUNNING', `rescaled ${event.vertexId} from ${from} to ${to}`);
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
