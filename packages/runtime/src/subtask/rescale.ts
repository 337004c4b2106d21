import { buildChains, keyGroupsOf, rangeFor, rescaledPlan } from '@keyflow/core';
import type { RescaleSpec } from '../protocol.ts';
import type { OperatorChain } from './chain.ts';
import type { Aligned } from './checkpointer.ts';
import { now, type SubtaskContext } from './context.ts';
import type { HandoverLoader } from './handoverLoader.ts';
import type { HandoverSender } from './handoverSender.ts';
import type { SinkDriver } from './sinkDriver.ts';

/** A live rescale as this subtask takes part in it (DESIGN §6): preparing, applying it at its barrier, or joining it. */
export class Rescale {
  constructor(
    private readonly ctx: SubtaskContext,
    private readonly chain: OperatorChain,
    private readonly sinks: SinkDriver,
    private readonly sender: HandoverSender,
    private readonly loader: HandoverLoader,
    /** Makes the subtask's output and input channels match the plan (router and input channels). */
    private readonly syncChannels: () => void,
    /** Starts a new subtask's event time where the old owners' was at the barrier. */
    private readonly startEventTimeAt: (watermark: number) => void,
  ) {}

  /** The rescale's barrier comes soon: a subtask of the rescaled chain pre-copies what leaves it, and preloads what it gains. */
  async prepare(r: RescaleSpec): Promise<void> {
    const { ctx } = this;
    if (r.chainId !== ctx.chain.id) return;
    if (this.chain.keyed.length && !ctx.task.joinRescale) {
      this.loader.startPreload(r);
      this.sender.startPrecopy(r);
    } else await ctx.emit({ type: 'precopied', scalingId: r.scalingId });
  }

  /**
   * After barrier n of a rescale of chain R to p′ (DESIGN §6): producers into R route with p′, consumers of R
   * read from p′ producers, and R's own subtasks load the key groups (or source splits) their new range gains
   * as the old owners hand them over, without waiting for n to complete; those with index ≥ p′ stop.
   */
  async apply(n: number, r: RescaleSpec, aligned: Aligned): Promise<void> {
    const { ctx, chain } = this;
    const { task } = ctx;
    const target = ctx.chains.find((c) => c.id === r.chainId);
    if (!target) return;
    ctx.plan = rescaledPlan(ctx.plan, target, r.parallelism, r.scalingId);
    ctx.chains = buildChains(ctx.graph, ctx.plan);
    if (target.id === ctx.chain.id && task.index >= r.parallelism) {
      // Scaled away: its state went to the new owners and is in the checkpoint (close() waits for the write).
      ctx.stopAs('stopped', 'scaled-away', r.scalingId);
      return;
    }
    // The barrier went out on every old channel and came in on every old input: from here the new ones carry records.
    this.syncChannels();
    if (target.id !== ctx.chain.id) return;
    // The new ranges and splits; what this subtask keeps is processed on at once, only what it gains waits for its state.
    const gained = this.loader.gains(r);
    for (const kv of chain.keyed) kv.range = rangeFor(task.index, r.parallelism, kv.backend.maxParallelism);
    const src = chain.source?.source;
    src?.assign(src.splitsFor(task.index, r.parallelism));
    const ahead = this.loader.takePreload(r.scalingId);
    const t1 = now();
    if (this.sinks.gated() && gained.some((g) => g.scope === 'KEYED' && g.parts.length > 0)) this.sinks.gate = r.scalingId;
    const loaded = await this.loader.receive(r.scalingId, gained, n, ahead);
    // A failed rescale checkpoint makes the control plane recover the whole job; this attempt is over.
    if (!loaded) return void (ctx.outcome ??= 'canceled');
    src?.settle();
    task.parallelism = r.parallelism;
    ctx.chain = ctx.chains.find((c) => c.id === ctx.chain.id)!;
    ctx.deps.onRescaled?.();
    await ctx.emit({
      type: 'rescaled',
      scalingId: r.scalingId,
      keyGroupsLoaded: loaded.parts,
      bytesLoaded: loaded.bytes,
      restoreMs: Math.round(now() - t1),
      pauseMs: Math.round(now() - aligned.mono),
      alignedAt: aligned.at,
      runningAt: Date.now(),
    });
  }

  /**
   * A subtask started by rescale `joinRescale`: everything in its range arrives from the old owners once they
   * aligned. False when it ended before it got it all.
   */
  async join(scalingId: number): Promise<boolean> {
    const { ctx, chain } = this;
    const t0 = now();
    const src = chain.source;
    if (this.sinks.gated() && chain.keyed.length) this.sinks.gate = scalingId;
    const loaded = await this.loader.receive(scalingId, [
      ...chain.keyed.map((kv) => ({ vertexId: kv.vertex.id, scope: 'KEYED' as const, parts: keyGroupsOf(kv.range) })),
      ...(src ? [{ vertexId: src.vertex.id, scope: 'OPERATOR' as const, parts: [...src.source.splits] }] : []),
    ]);
    if (!loaded) {
      ctx.outcome ??= 'canceled';
      return false;
    }
    if (loaded.watermark !== undefined) this.startEventTimeAt(loaded.watermark);
    await ctx.emit({
      type: 'rescaled',
      scalingId,
      keyGroupsLoaded: loaded.parts,
      bytesLoaded: loaded.bytes,
      restoreMs: Math.round(now() - t0),
      pauseMs: 0,
      runningAt: Date.now(),
    });
    return true;
  }
}
