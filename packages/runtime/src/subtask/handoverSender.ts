import { keyGroupsOf, subtaskFor } from '@keyflow/core';
import { encodeSplit } from '../connectors/source.ts';
import { sendHandover, type HandoverPart } from '../handover.ts';
import type { RescaleSpec } from '../protocol.ts';
import type { KeyedVertex, OperatorChain } from './chain.ts';
import { yieldToLoop, type SubtaskContext } from './context.ts';

/** A rescale's pre-copy under way: which key groups went, per keyed operator. */
interface Precopy {
  scalingId: number;
  stopped: boolean;
  copied: Map<KeyedVertex, Set<number>>;
}

/** The old owner's side of a rescale's state handover (DESIGN §6, handover.ts): the pre-copy, then the rest at the barrier. */
export class HandoverSender {
  private precopy: Precopy | undefined;

  constructor(
    private readonly ctx: SubtaskContext,
    private readonly chain: OperatorChain,
  ) {}

  /**
   * Ahead of rescale `r`'s barrier (DESIGN §6, pre-copy): sends the key groups that will leave this subtask to
   * their new owners while processing goes on, recording which keys are touched after each group's copy, so
   * that at the barrier only those go (see handOver). Reports `precopied` when all went.
   */
  startPrecopy(r: RescaleSpec): void {
    const { ctx } = this;
    const state: Precopy = { scalingId: r.scalingId, stopped: false, copied: new Map() };
    this.precopy = state;
    void (async () => {
      for (const kv of this.chain.keyed) {
        const copied = new Set<number>();
        state.copied.set(kv, copied);
        const leaving = this.leavingKeyGroups(kv, r);
        kv.backend.trackChanges([...leaving.values()].flat());
        for (const [to, kgs] of leaving) {
          await sendHandover(
            ctx.redis,
            ctx.handoverKey(r.scalingId, to),
            { from: ctx.task.index, vertexId: kv.vertex.id, scope: 'KEYED' },
            kgs,
            (kg) => {
              const data = kv.backend.copyTracked(kg);
              return data && [kg, data];
            },
            { precopy: true, between: yieldToLoop, stop: () => state.stopped, onSent: (parts) => parts.forEach((kg) => copied.add(kg)) },
          );
          if (state.stopped) return;
        }
      }
      await ctx.emit({ type: 'precopied', scalingId: r.scalingId });
    })().catch((err) => {
      // Nothing counts as copied then: the barrier sends every group whole.
      state.copied.clear();
      ctx.log.warn({ scalingId: r.scalingId, error: (err as Error).message }, 'pre-copy failed; the barrier sends the groups whole');
    });
  }

  /** Ends a pre-copy: its rescale's barrier came. */
  endPrecopy(): void {
    if (!this.precopy) return;
    this.precopy.stopped = true;
    this.precopy = undefined;
    for (const kv of this.chain.keyed) kv.backend.stopTracking();
  }

  /**
   * Sends the key groups and source splits that rescale `r` takes away from this subtask to their new owners
   * (see handover.ts) and takes them out of its state: from the barrier on, no record for them reaches it. A
   * group pre-copied goes as a delta; the rest whole, also into the checkpoint. The pre-copied groups' whole
   * state goes into the checkpoint in the background; the returned promise settles once all is sent and added.
   */
  handOver(r: RescaleSpec, add: (kv: KeyedVertex, parts: Map<number, Buffer>) => void): Promise<unknown> {
    const { ctx } = this;
    // The pre-copy cannot go on meanwhile: everything up to the sends below runs without yielding.
    const pre = this.precopy?.scalingId === r.scalingId ? this.precopy : undefined;
    const work: Promise<unknown>[] = [];
    const send = (to: number, vertexId: string, scope: 'KEYED' | 'OPERATOR', covers: number[], encode: (part: number) => HandoverPart | undefined) =>
      work.push(
        sendHandover(
          ctx.redis,
          ctx.handoverKey(r.scalingId, to),
          { from: ctx.task.index, vertexId, scope, watermark: ctx.time.watermark },
          covers,
          encode,
        ),
      );
    for (const kv of this.chain.keyed) {
      const copied = pre?.copied.get(kv) ?? new Set<number>();
      const leaving = this.leavingKeyGroups(kv, r);
      for (const [to, kgs] of leaving)
        send(to, kv.vertex.id, 'KEYED', kgs, (kg) => {
          if (copied.has(kg)) return [kg, kv.backend.delta(kg), true];
          const data = kv.backend.snapshot([kg]).get(kg);
          if (data) add(kv, new Map([[kg, data]]));
          return data && [kg, data];
        });
      const encode = kv.backend.detach([...leaving.values()].flat());
      work.push(
        (async () => {
          for (const kg of copied) {
            const data = encode(kg);
            if (data) add(kv, new Map([[kg, data]]));
            await yieldToLoop();
          }
        })(),
      );
    }
    const src = this.chain.source;
    if (src) {
      const { source } = src;
      const owner = new Map<number, number>();
      for (let j = 0; j < r.parallelism; j++) for (const x of source.splitsFor(j, r.parallelism)) owner.set(x, j);
      for (const [to, splits] of this.leaving(source.splits, (x) => owner.get(x)!))
        send(to, src.vertex.id, 'OPERATOR', splits, (x) => (source.offsets.has(x) ? [x, encodeSplit(source, x)] : undefined));
    }
    return Promise.all(work);
  }

  /** Of the parts (key groups or splits) this subtask holds, those that go to another subtask, by new owner. */
  private leaving(parts: Iterable<number>, newOwner: (part: number) => number): Map<number, number[]> {
    const leaving = groupBy(parts, newOwner);
    leaving.delete(this.ctx.task.index);
    return leaving;
  }

  /** The key groups of `kv` that rescale `r` moves away from this subtask, by new owner. */
  private leavingKeyGroups(kv: KeyedVertex, r: RescaleSpec): Map<number, number[]> {
    return this.leaving(keyGroupsOf(kv.range), (kg) => subtaskFor(kg, r.parallelism, kv.backend.maxParallelism));
  }
}

function groupBy<T>(items: Iterable<T>, by: (item: T) => number): Map<number, T[]> {
  const out = new Map<number, T[]>();
  for (const item of items) {
    const k = by(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}
