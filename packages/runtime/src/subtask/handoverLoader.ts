import { keyGroupsOf, rangeFor } from '@keyflow/core';
import { loadSplit } from '../connectors/source.ts';
import { HandoverReceiver, type HandoverMessage } from '../handover.ts';
import type { RescaleSpec } from '../protocol.ts';
import type { OperatorChain } from './chain.ts';
import type { ArrivalWatcher, Commands, StreamEntry } from './commands.ts';
import { now, type SubtaskContext } from './context.ts';

/** What a subtask waits to be handed: per operator and scope, the parts (key groups or splits). */
export type Expected = ConstructorParameters<typeof HandoverReceiver>[0];

/** A rescale's handover read ahead of its barrier by a subtask that stays and gains key groups. */
export interface Preload {
  scalingId: number;
  key: string;
  receiver: HandoverReceiver;
  lastId: string;
  gains: Expected;
}

/** The new owner's side of a rescale's state handover (DESIGN §6, handover.ts): it loads what the old owners send. */
export class HandoverLoader {
  /** Waiting for the state a rescale hands it (the metrics' progress says so). */
  restoring = false;
  /**
   * A rescale's handover read ahead of its barrier: the pre-copies are loaded between batches, so that at the
   * barrier only the deltas are left to apply (see startPreload).
   */
  preload: Preload | undefined;

  constructor(
    private readonly ctx: SubtaskContext,
    private readonly chain: OperatorChain,
    private readonly commands: Commands,
  ) {}

  /** What rescale `r` gives this subtask that it does not hold yet: key groups per keyed operator, and source splits. */
  gains(r: RescaleSpec): Expected {
    const { index } = this.ctx.task;
    const out: Expected = this.chain.keyed.map((kv) => {
      const next = rangeFor(index, r.parallelism, kv.backend.maxParallelism);
      return { vertexId: kv.vertex.id, scope: 'KEYED', parts: keyGroupsOf(next).filter((kg) => kg < kv.range.start || kg > kv.range.end) };
    });
    const src = this.chain.source;
    if (src) {
      const held = new Set(src.source.splits);
      const next = src.source.splitsFor(index, r.parallelism);
      out.push({ vertexId: src.vertex.id, scope: 'OPERATOR', parts: next.filter((x) => !held.has(x)) });
    }
    return out;
  }

  /**
   * A subtask that stays through rescale `r` and gains key groups reads their pre-copies as they come, between
   * batches, into groups it does not process yet; at the barrier only the deltas are left (receive goes on
   * from where this got to). Without it, a scale-down's survivor would load all it gains while paused.
   */
  startPreload(r: RescaleSpec): void {
    const { index } = this.ctx.task;
    if (index >= r.parallelism) return;
    const gains = this.gains(r);
    if (!gains.some((g) => g.parts.length)) return;
    this.preload = {
      scalingId: r.scalingId,
      key: this.ctx.handoverKey(r.scalingId, index),
      receiver: new HandoverReceiver(gains),
      lastId: '0-0',
      gains,
    };
  }

  /** Loads pre-copies the input loop read from the preload's stream. */
  applyPreload(pre: Preload, entries: StreamEntry[]): void {
    for (const [id, fields] of entries) {
      if (this.preload !== pre) break;
      pre.lastId = id.toString();
      pre.receiver.apply(fields[1] as Buffer, this.loadPart);
    }
  }

  /** A barrier of rescale `scalingId` came: a preload for another rescale will not be used (that one will not come). */
  dropPreloadUnless(scalingId: number): void {
    if (!this.preload || this.preload.scalingId === scalingId) return;
    // What it loaded is not this subtask's.
    for (const g of this.preload.gains) this.chain.keyed.find((kv) => kv.vertex.id === g.vertexId)?.backend.detach(g.parts);
    this.preload = undefined;
  }

  /** The preload read ahead for rescale `scalingId`, if any; it ends here either way. */
  takePreload(scalingId: number): Preload | undefined {
    const ahead = this.preload?.scalingId === scalingId ? this.preload : undefined;
    this.preload = undefined;
    return ahead;
  }

  /**
   * Waits for the state a rescale hands this subtask (`expected` parts per operator), loading each slice as it
   * arrives. Commands that arrive meanwhile wait in the queue, but stop, cancel and the rescale's rollback end the
   * wait, and triggers are dropped (while waiting, a subtask takes part in no checkpoint: the rescale holds periodic
   * ones back). Undefined when the subtask ends before it got everything (also when the rescale's checkpoint
   * `abortOn` is aborted: its senders may be gone).
   */
  async receive(scalingId: number, expected: Expected, abortOn?: number, ahead?: Preload): Promise<HandoverReceiver | undefined> {
    const { ctx, commands } = this;
    const receiver = ahead?.receiver ?? new HandoverReceiver(expected);
    const key = ctx.handoverKey(scalingId, ctx.task.index);
    let lastId = ahead?.lastId ?? '0-0';
    const watcher: ArrivalWatcher = (cmd) => {
      if (cmd.type === 'rescale-rollback' && cmd.scalingId === scalingId) ctx.stopAs('canceled', 'rolled-back', scalingId);
      else if (cmd.type === 'abort' && cmd.checkpoint === abortOn) ctx.stopAs('canceled', 'rescale-aborted', scalingId);
      else if (cmd.type === 'trigger') return 'drop';
      else {
        if (cmd.type === 'stop') ctx.stopAs('stopped', 'stop');
        if (cmd.type === 'cancel') ctx.stopAs('canceled', 'cancel');
        return 'queue';
      }
      return 'drop';
    };
    this.restoring = true;
    await commands.watching(watcher, async () => {
      while (!receiver.done && !ctx.outcome) {
        const res = (await ctx.blocking.xreadBuffer('COUNT', 16, 'BLOCK', 200, 'STREAMS', commands.key, key, commands.lastId, lastId)) as
          [Buffer, [Buffer, Buffer[]][]][] | null;
        for (const [keyBuf, entries] of res ?? []) {
          if (keyBuf.toString() !== key) {
            commands.take(entries);
            continue;
          }
          for (const [idBuf, fields] of entries) {
            lastId = idBuf.toString();
            receiver.apply(fields[1]!, this.loadPart);
          }
        }
      }
    });
    this.restoring = false;
    void ctx.redis.del(key).catch(() => {});
    return receiver.done && !ctx.outcome ? receiver : undefined;
  }

  /** Loads one handed-over part: a key group's state (or what changed in it since its pre-copy), or a split's offset. */
  private readonly loadPart = (m: HandoverMessage, part: number, data: Uint8Array, delta: boolean): void => {
    const backend = m.scope === 'KEYED' ? this.chain.keyed.find((kv) => kv.vertex.id === m.vertexId)?.backend : undefined;
    if (backend && delta) backend.applyDelta(part, data);
    else if (backend) backend.restore(part, data);
    else if (m.scope === 'OPERATOR' && this.chain.source) loadSplit(this.chain.source.source, part, data, now());
  };
}
