import { buildChains, END_WATERMARK, operatorVersionProblem, parsePlan, sourceEventTime, validateGraph } from '@keyflow/core';
import { z } from 'zod';
import type { Command, RescaleSpec, TaskData } from '../protocol.ts';
import { OperatorChain } from './chain.ts';
import { Checkpointer } from './checkpointer.ts';
import { Commands } from './commands.ts';
import { now, SubtaskContext, yieldToLoop, type SubtaskDeps, type SubtaskOutcome } from './context.ts';
import { Counters } from './counters.ts';
import { Fencing } from './fencing.ts';
import { HandoverLoader } from './handoverLoader.ts';
import { HandoverSender } from './handoverSender.ts';
import { InputRunner } from './inputRunner.ts';
import { MetricsReporter } from './metricsReporter.ts';
import { Rescale } from './rescale.ts';
import { Router } from './router.ts';
import { SinkDriver } from './sinkDriver.ts';
import { SourceRunner } from './sourceRunner.ts';

/** A stored graph's vertices, read no further than their types (whether this worker has their operators). */
const vertexTypes = z.array(z.object({ id: z.string(), type: z.string() }));

/** A worker without connection profiles: a connector naming one fails clearly. */
const noConnections = (name: string) => Promise.reject(new Error(`connection '${name}': this worker has no access to connection profiles`));

export { defaultRuntimeSettings, type RuntimeSettings, type SubtaskDeps, type SubtaskOutcome } from './context.ts';

/** Runs one subtask (a chain × index) until it finishes, is stopped, canceled or fenced off. */
export async function runSubtask(task: TaskData, deps: SubtaskDeps): Promise<SubtaskOutcome> {
  const subtask = new Subtask(task, deps);
  try {
    await subtask.open();
    return await subtask.run();
  } catch (err) {
    await subtask.ctx.emit({ type: 'failed', error: err instanceof Error ? err.message : String(err) }).catch(() => {});
    throw err;
  } finally {
    await subtask.close();
  }
}

/** The parts of a subtask whose plan is loaded. */
interface Parts {
  chain: OperatorChain;
  router: Router;
  sinks: SinkDriver;
  commands: Commands;
  checkpointer: Checkpointer;
  rescale: Rescale;
  inputs: InputRunner;
  source: SourceRunner | undefined;
  metrics: MetricsReporter;
  startEventTimeAt: (watermark: number) => void;
}

/**
 * One subtask: opens its parts (the chain, its channels, its state), runs the source or input loop, and closes
 * them saying how it ended. The parts meet here; commands reach them through one queue, one at a time.
 */
class Subtask {
  readonly ctx: SubtaskContext;
  private parts: Parts | undefined;
  /** When partial batches were last sent. */
  private lastFlush = now();

  constructor(task: TaskData, deps: SubtaskDeps) {
    this.ctx = new SubtaskContext(task, deps);
  }

  async open(): Promise<void> {
    const { ctx } = this;
    const { task, deps } = ctx;
    const job = await deps.prisma.job.findUniqueOrThrow({ where: { id: task.jobId }, include: { pipelineVersion: true } });
    ctx.plan = task.plan ?? parsePlan(job.plan);
    // Before the graph is read: a worker without the job's user operators cannot even validate it.
    const vertices = vertexTypes.safeParse((job.pipelineVersion.graph as { vertices?: unknown } | null)?.vertices).data ?? [];
    const refusal = operatorVersionProblem(ctx.plan, vertices, deps.workerId);
    if (refusal) throw new Error(refusal);
    const valid = validateGraph(job.pipelineVersion.graph);
    if (!valid.ok) throw new Error(`job ${task.jobId} has an invalid graph: ${valid.issues[0]?.message}`);
    ctx.graph = valid.graph;
    ctx.chains = buildChains(ctx.graph, ctx.plan);
    const chain = ctx.chains.find((c) => c.id === task.vertexId);
    if (!chain) throw new Error(`no chain headed by ${task.vertexId} in job ${task.jobId}`);
    ctx.chain = chain;

    const commands = new Commands(ctx, (cmd) => this.handle(cmd));
    await commands.open();
    // Which checkpoint a transactional sink settles older attempts' output against (see Sink.open).
    let recoverFrom: number | undefined;
    if (task.joinRescale === undefined) {
      const from =
        task.restoreFrom === undefined
          ? undefined
          : await deps.prisma.checkpoint.findUnique({ where: { id: task.restoreFrom }, select: { jobId: true, number: true } });
      recoverFrom = from?.jobId === task.jobId ? from.number : 0;
    }
    this.parts = this.assemble(commands, recoverFrom);
    const { router, inputs, checkpointer, sinks } = this.parts;
    router.sync();
    inputs.sync();
    const started = now();
    const restored = task.restoreFrom !== undefined ? await checkpointer.restore(task.restoreFrom) : { bytes: 0, keyGroups: 0, splits: 0 };
    if (task.restoreFrom !== undefined) await this.expectRestorable(task.restoreFrom);
    if (restored.watermark !== undefined) this.parts.startEventTimeAt(restored.watermark);
    await this.parts.chain.source?.source.open?.();
    await sinks.open();
    await ctx.emit({
      type: 'running',
      workerId: deps.workerId,
      restoredBytes: restored.bytes,
      restoredKeyGroups: restored.keyGroups,
      restoreMs: Math.round(now() - started),
    });
  }

  /**
   * After its state was read: the checkpoint is still complete, so what was read was all of it. One discarded (its
   * state deleted) before or while it was read leaves the subtask with part of its state or none, and its sources at
   * their start: it fails instead, naming the checkpoint, and the job's recovery says what is left to restart from.
   */
  private async expectRestorable(checkpointId: number): Promise<void> {
    const cp = await this.ctx.deps.prisma.checkpoint.findUnique({ where: { id: checkpointId }, select: { status: true, number: true, jobId: true } });
    if (cp?.status !== 'COMPLETED')
      throw new Error(
        cp
          ? `cannot restore checkpoint #${cp.number} of job ${cp.jobId.slice(0, 8)}: it is ${cp.status}, its state gone`
          : `cannot restore checkpoint ${checkpointId}: it was deleted`,
      );
  }

  /** Makes the parts and joins them up. */
  private assemble(commands: Commands, recoverFrom: number | undefined): Parts {
    const { ctx } = this;
    const { task, deps } = ctx;
    const counters = new Counters();
    const router = new Router(ctx, counters);
    const chain = new OperatorChain(ctx, counters, router, {
      index: task.index,
      parallelism: task.parallelism,
      sink: { jobId: task.jobId, attempt: task.attempt, index: task.index, recoverFrom },
      redis: ctx.redis,
      keys: deps.keys,
      databaseUrl: deps.databaseUrl,
      connection: deps.connection ?? noConnections,
      logger: ctx.log,
    });
    const sinks = new SinkDriver(ctx, chain.sinks, now());
    sinks.lastCompleted = recoverFrom ?? 0;
    const loader = new HandoverLoader(ctx, chain, commands);
    const sender = new HandoverSender(ctx, chain);
    const checkpointer = new Checkpointer(ctx, chain, router, sinks, sender, loader);
    const afterWork = () => this.afterWork();
    const finish = () => this.finish();
    const inputs = new InputRunner(ctx, chain, counters, commands, loader, {
      atBarrier: (n, id, alignmentMs, r) => this.atBarrier(n, id, alignmentMs, r),
      finish,
      afterWork,
      betweenSlices: () => this.betweenSlices(),
      // Output waiting for its linger or a sink's next write: until then; else short while sinks or timers may want the loop.
      blockMs: () =>
        router.buffered() || sinks.holding() ? ctx.settings.lingerMs : sinks.sinks.length || chain.onClock ? ctx.settings.lingerMs * 4 : 200,
      watermark: (w) => this.advanceWatermark(w),
      status: (idle) => router.status(idle),
    });
    const startEventTimeAt = (watermark: number) => {
      inputs.valve.floor(watermark);
      if (watermark > ctx.time.watermark) ctx.time.watermark = watermark;
    };
    const rescale = new Rescale(
      ctx,
      chain,
      sinks,
      sender,
      loader,
      () => {
        router.sync();
        inputs.sync();
      },
      startEventTimeAt,
    );
    const src = chain.source;
    const source =
      src &&
      new SourceRunner(ctx, src.source, counters.of(src.vertex.id), chain.head, commands, router, afterWork, finish, {
        settings: sourceEventTime(src.vertex),
        advance: (w) => this.advanceWatermark(w),
        status: (idle) => router.status(idle),
        deadLetter: (r, reason) => counters.deadLetter(src.vertex.id, r, reason),
      });
    const metrics = new MetricsReporter(
      ctx,
      counters,
      chain,
      router,
      {
        backlog: async () => (source ? (source.backlog ? 1 : 0) : inputs.backlog()),
        takeRead: () => inputs.takeRead(),
        takeIdle: () => (source ? source.takeIdle() : inputs.takeIdle()),
        aligning: (t) => inputs.aligning(t),
        lastBarrier: () => checkpointer.lastBarrier,
        restoring: () => loader.restoring,
        sinkWaiting: (t) => sinks.waiting(t),
      },
      new Fencing(ctx),
    );
    return { chain, router, sinks, commands, checkpointer, rescale, inputs, source, metrics, startEventTimeAt };
  }

  async run(): Promise<SubtaskOutcome> {
    const { ctx } = this;
    const { rescale, source, inputs, metrics } = this.parts!;
    metrics.start();
    if (ctx.task.joinRescale !== undefined && !(await rescale.join(ctx.task.joinRescale))) return ctx.outcome!;
    if (source) await source.run();
    else await inputs.run();
    return ctx.outcome ?? 'finished';
  }

  /** Handles one command of the control plane; the command queue never runs one inside another. */
  private async handle(cmd: Command): Promise<void> {
    const { ctx } = this;
    const { sinks, rescale, source } = this.parts!;
    switch (cmd.type) {
      case 'trigger':
        if (source) {
          if (cmd.stopAfter) source.stopAfterBarrier = true;
          await this.atBarrier(cmd.checkpoint, cmd.checkpointId, 0, cmd.rescale);
        }
        return;
      case 'abort':
        // A stop-with-savepoint whose savepoint failed: the sources go on.
        if (source) source.stopAfterBarrier = false;
        return;
      case 'rescale-rollback':
        if (ctx.task.joinRescale === cmd.scalingId) ctx.stopAs('canceled', 'rolled-back', cmd.scalingId);
        return;
      case 'stop':
        ctx.stopAs('stopped', 'stop');
        return;
      case 'cancel':
        ctx.stopAs('canceled', 'cancel');
        return;
      case 'rescale-prepare':
        await rescale.prepare(cmd.rescale);
        return;
      case 'complete':
        if (cmd.rescale && cmd.rescale.scalingId === sinks.gate) sinks.gate = undefined;
        sinks.commit(cmd.checkpoint);
        this.sourceCompleted(cmd.checkpoint);
        return;
    }
  }

  /** Checkpoint n completed: a source acknowledging upstream does it beside processing (a failure waits for the next). */
  private sourceCompleted(n: number): void {
    const src = this.parts!.chain.source;
    src?.source
      .completed?.(n)
      .catch((err) => this.ctx.log.warn({ vertexId: src.vertex.id, checkpoint: n, error: (err as Error).message }, 'acknowledging upstream failed'));
  }

  /** Barrier n here (a source's trigger, or aligned on every input): the checkpoint, then the rescale it carries. */
  private async atBarrier(n: number, checkpointId: number, alignmentMs: number, r?: RescaleSpec): Promise<void> {
    const { checkpointer, rescale } = this.parts!;
    const aligned = await checkpointer.take(n, checkpointId, alignmentMs, r);
    if (r) await rescale.apply(n, r, aligned);
  }

  /** The watermark rose (a source's, or over the inputs): the chain fires what is due, then it goes downstream. */
  private async advanceWatermark(watermark: number): Promise<void> {
    const { chain, router } = this.parts!;
    chain.advanceWatermark(watermark);
    await router.watermark(watermark);
  }

  /** Sends full batches (waiting under backpressure), lingering partial ones, and periodic sink writes. */
  private async afterWork(): Promise<void> {
    const { router, sinks, chain } = this.parts!;
    const t = now();
    if (chain.onClock) chain.processingTime(Date.now());
    const lingered = t - this.lastFlush >= this.ctx.settings.lingerMs;
    await router.flush(lingered);
    if (lingered) this.lastFlush = t;
    sinks.check();
    sinks.maybeFlush(t);
    // Sinks that cannot keep up make processing wait, as full channels do (until the subtask is fenced off or aborted).
    if (sinks.overfull()) await sinks.relieve(now, () => this.ctx.outcome !== undefined);
  }

  /** Within a long read: full batches go out (waiting under backpressure), sinks write when due, the loop turns. */
  private async betweenSlices(): Promise<void> {
    const { router, sinks } = this.parts!;
    await router.flush(false);
    sinks.maybeFlush(now());
    await yieldToLoop();
  }

  /** The input ended: ends the outputs, lets sinks and checkpoint writes settle, and reports last. */
  private async finish(): Promise<void> {
    const { ctx } = this;
    const { router, sinks, commands, checkpointer, metrics } = this.parts!;
    // The end of the input is the end of event time: every window fires before the outputs end.
    if (ctx.time.watermark < END_WATERMARK) await this.advanceWatermark(END_WATERMARK);
    await router.end();
    // A sink gated by a rescale writes its last output only after the rescale's checkpoint completed.
    while (sinks.gate !== undefined && !ctx.outcome) await commands.poll(200);
    await sinks.settleWrites();
    await checkpointer.settle();
    await sinks.finish();
    await metrics.stop();
    await metrics.report(now());
    await ctx.emit({ type: 'finished' });
    ctx.outcome = 'finished';
  }

  async close(): Promise<void> {
    const { ctx, parts } = this;
    if (parts) {
      await parts.checkpointer.settle().catch(() => {});
      await parts.sinks.settle();
      await parts.metrics.stop();
      if (ctx.outcome && ctx.outcome !== 'finished') {
        await parts.metrics.report(now()).catch(() => {});
        // A subtask that ends without the control plane's or a rescale's word (its worker closing) says so too: a failure.
        if (ctx.outcome !== 'fenced') await ctx.emit({ type: 'stopped', ...(ctx.stopCause ?? { cause: 'aborted' }) }).catch(() => {});
      }
      await parts.sinks.close();
      await parts.chain.source?.source.close?.().catch(() => {});
    }
    ctx.blocking.disconnect();
  }
}
