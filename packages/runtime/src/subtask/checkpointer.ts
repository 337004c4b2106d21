import { decodeValue, encodeValue, keyGroupsOf, UPPER_BOUND_MAX_PARALLELISM } from '@keyflow/core';
import type { StateChunkData } from '../checkpointStorage.ts';
import { SinkFencedError } from '../connectors/sink.ts';
import { encodeSplit, loadSplit } from '../connectors/source.ts';
import type { RescaleSpec, VertexAck } from '../protocol.ts';
import type { KeyedVertex, OperatorChain } from './chain.ts';
import { now, type SubtaskContext } from './context.ts';
import type { HandoverLoader } from './handoverLoader.ts';
import type { HandoverSender } from './handoverSender.ts';
import type { Router } from './router.ts';
import type { SinkDriver } from './sinkDriver.ts';

/** When a checkpoint's barrier aligned here: on the monotonic clock, and as epoch ms. */
export interface Aligned {
  mono: number;
  at: number;
}

/** This subtask's part of checkpoints (DESIGN §5): its snapshot at a barrier, the acknowledgement, and restoring. */
export class Checkpointer {
  /** The newest checkpoint whose barrier this subtask passed on. */
  lastBarrier = 0;
  /** The asynchronous part of the checkpoints in flight, one after another. */
  private pendingWrite: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: SubtaskContext,
    private readonly chain: OperatorChain,
    private readonly router: Router,
    private readonly sinks: SinkDriver,
    private readonly sender: HandoverSender,
    private readonly loader: HandoverLoader,
  ) {}

  /**
   * Loads from a checkpoint the key groups of each keyed operator's range and the offsets of the source's splits;
   * for a chain with timers also the lowest watermark its subtasks had at the barrier, where its event time restarts.
   */
  async restore(checkpointId: number): Promise<{ bytes: number; keyGroups: number; splits: number; watermark?: number }> {
    const storage = this.ctx.deps.checkpoints;
    let bytes = 0;
    let keyGroups = 0;
    let splits = 0;
    for (const kv of this.chain.keyed) {
      for (const c of await storage.read(checkpointId, kv.vertex.id, 'KEYED', kv.range.start, kv.range.end)) {
        kv.backend.restore(c.part, c.data);
        bytes += c.data.byteLength;
        keyGroups++;
      }
    }
    const src = this.chain.source;
    if (src) {
      const held = src.source.splits;
      for (const c of await storage.read(checkpointId, src.vertex.id, 'OPERATOR', held[0]!, held[held.length - 1]!)) {
        loadSplit(src.source, c.part, c.data, now());
        bytes += c.data.byteLength;
        splits++;
      }
    }
    const head = this.chain.keyed[0];
    if (!this.chain.hasTimers || !head) return { bytes, keyGroups, splits };
    // Every subtask's watermark, whatever parallelism it had: the lowest is where none of them had gone past.
    const marks = await storage.read(checkpointId, head.vertex.id, 'OPERATOR', 0, UPPER_BOUND_MAX_PARALLELISM);
    if (marks.length === 0) return { bytes, keyGroups, splits };
    const watermark = Math.min(...marks.map((c) => decodeValue<{ watermark: number }>(c.data).watermark));
    return { bytes, keyGroups, splits, watermark };
  }

  /**
   * Takes this subtask's part of checkpoint `n` at its barrier: sends the records before it, pre-commits
   * sinks, copies state (sync), forwards the barrier, then writes the copy to storage while processing
   * goes on (async) and acknowledges. Returns when the barrier aligned, for a rescale that follows it.
   */
  async take(n: number, checkpointId: number, alignmentMs: number, rescale?: RescaleSpec): Promise<Aligned> {
    const { ctx, chain, sinks } = this;
    const t0 = now();
    const alignedAt = Date.now();
    // Only one checkpoint is in flight at a time: a later barrier means the rescale's checkpoint completed.
    sinks.gate = undefined;
    await this.router.flush(true);
    sinks.check();
    const sinkWrites = sinks.preCommit(n);
    const chunks: StateChunkData[] = [];
    const vertices: Record<string, VertexAck> = {};
    for (const v of ctx.chain.vertices) vertices[v.id] = { bytes: 0, keyGroups: 0 };
    const add = (kv: KeyedVertex, parts: Map<number, Buffer>) => {
      const ack = vertices[kv.vertex.id]!;
      for (const [kg, data] of parts) {
        chunks.push({ vertexId: kv.vertex.id, scope: 'KEYED', part: kg, data });
        ack.bytes += data.byteLength;
        ack.keyGroups++;
      }
      return parts;
    };
    // A rescale of this chain: what leaves this subtask goes to its new owners first, the rest after.
    const handedOver = rescale?.chainId === ctx.chain.id ? this.sender.handOver(rescale, add) : undefined;
    // A rescale's barrier ends its pre-copy (after handOver took the deltas). A periodic checkpoint's barrier may come
    // between the pre-copy and its barrier (it was in flight): copies and tracked changes stay valid across it.
    if (rescale) this.sender.endPrecopy();
    if (rescale) this.loader.dropPreloadUnless(rescale.scalingId);
    // What stays is copied in the background while processing goes on.
    const kept = chain.keyed.map((kv) => kv.backend.snapshotAsync(keyGroupsOf(kv.range)).then((parts) => void add(kv, parts)));
    // Awaited in the write below; these only keep an early failure from counting as unhandled.
    for (const p of [handedOver, ...kept]) p?.catch(() => {});
    // A chain with timers keeps its watermark: after a recovery, what was late before the barrier is late again.
    const head = chain.keyed[0];
    if (chain.hasTimers && head)
      chunks.push({ vertexId: head.vertex.id, scope: 'OPERATOR', part: ctx.task.index, data: encodeValue({ watermark: ctx.time.watermark }) });
    const src = chain.source;
    if (src) {
      for (const split of src.source.offsets.keys()) {
        const data = encodeSplit(src.source, split);
        chunks.push({ vertexId: src.vertex.id, scope: 'OPERATOR', part: split, data });
        vertices[src.vertex.id]!.bytes += data.byteLength;
      }
      src.source.snapshot?.(n);
    }
    const syncMs = now() - t0;
    await this.router.barrier(n, checkpointId, rescale);
    this.lastBarrier = n;
    const previous = this.pendingWrite;
    this.pendingWrite = (async () => {
      await previous;
      const t1 = now();
      try {
        // A handover Redis did not take means a new owner lacks state: the checkpoint must fail, and the job recover.
        await handedOver;
        await Promise.all(kept);
        await sinkWrites;
        await ctx.deps.checkpoints.write(checkpointId, chunks);
        await ctx.emit({
          type: 'ack',
          checkpoint: n,
          checkpointId,
          alignmentMs: Math.round(alignmentMs),
          syncMs: Math.round(syncMs),
          asyncMs: Math.round(now() - t1),
          vertices,
        });
      } catch (err) {
        // What a sink could not pre-commit stays with it, for the next checkpoint.
        if (err instanceof SinkFencedError) ctx.outcome ??= 'fenced';
        const reason = `writing its part failed: ${(err as Error).message}`;
        ctx.log.warn({ checkpoint: n, checkpointId, reason }, 'checkpoint declined');
        await ctx.emit({ type: 'decline', checkpoint: n, checkpointId, reason }).catch(() => {});
      }
    })();
    return { mono: t0, at: alignedAt };
  }

  /** Waits for the checkpoint writes in flight; a failed one was declined already. */
  async settle(): Promise<void> {
    await this.pendingWrite;
  }
}
