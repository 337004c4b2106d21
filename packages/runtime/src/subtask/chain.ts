import {
  createOperator,
  getField,
  isKey,
  keyGroupFor,
  KeyedStateBackend,
  operatorSpec,
  rangeFor,
  type KeyGroupRange,
  type Output,
  type Rec,
  type StreamOperator,
  type Edge,
  type Vertex,
} from '@keyflow/core';
import { createSink, createSource, type ConnectorEnv } from '../connectors/registry.ts';
import type { Sink } from '../connectors/sink.ts';
import type { Source } from '../connectors/source.ts';
import type { SubtaskContext } from './context.ts';
import type { Counters } from './counters.ts';
import { operatorLogger } from './operatorLogger.ts';

/** A keyed operator of the chain: its state and the key groups this subtask owns. */
export interface KeyedVertex {
  vertex: Vertex;
  backend: KeyedStateBackend;
  range: KeyGroupRange;
}

/**
 * The chain's operators wired by function call (DESIGN §4, chaining), tail first, each counting what goes in and
 * out: a source at the head, keyed operators with their state, sinks at the tail; the tail emits to `out` (the
 * router). Records from input channels come in through `processInput`.
 */
export class OperatorChain {
  readonly keyed: KeyedVertex[] = [];
  readonly sinks: Sink[] = [];
  source: { vertex: Vertex; source: Source } | undefined;
  /** The head's input. */
  readonly head: Output;
  /** The keyed operator at the head, if any: input records are scoped to their key by the hash edge's key field. */
  private readonly keyedHead: KeyedVertex | undefined;
  private readonly keyField: string | undefined;
  /** The keyed head itself, for records that say which of its two inputs they come from (a join). */
  private headInput: ((rec: Rec, input: number) => void) | undefined;
  /** Operators with timers, head first, with the output each emits to: they hear of watermarks and the clock. */
  private readonly timed: { op: StreamOperator; out: Output }[] = [];
  /** Whether an operator of the chain keeps processing-time timers. */
  readonly onClock: boolean;
  /** Records per key group of the keyed head since the last metrics event (the key-group view shows skew). */
  private readonly keyGroupRecords: Uint32Array;

  constructor(
    private readonly ctx: SubtaskContext,
    private readonly counters: Counters,
    out: Output,
    env: Omit<ConnectorEnv, 'deadLetter'>,
  ) {
    const { chain, task } = ctx;
    for (const v of chain.vertices) counters.of(v.id);
    this.keyField = chain.inputs.find((e) => e.partitioning === 'hash')?.key;
    let next = out;
    for (let i = chain.vertices.length - 1; i >= 0; i--) {
      const v = chain.vertices[i]!;
      const m = counters.of(v.id);
      const kind = operatorSpec(v.type)!.kind;
      const downstream = next;
      const counted: Output = {
        emit: (rec) => {
          m.recordsOut++;
          downstream.emit(rec);
        },
        // Only a chain's tail has side outputs to send to (an edge from one ends the chain): elsewhere they go nowhere.
        emitTo: (name, rec) => {
          m.recordsOut++;
          downstream.emitTo?.(name, rec);
        },
      };
      const deadLetter = (r: unknown, reason: string) => counters.deadLetter(v.id, r, reason);
      if (kind === 'sink') {
        const sink = createSink(v, { ...env, deadLetter });
        this.sinks.push(sink);
        next = {
          emit: (rec) => {
            m.recordsIn++;
            sink.process(rec);
          },
        };
      } else if (kind === 'source') {
        this.source = { vertex: v, source: createSource(v, { ...env, deadLetter }) };
        next = counted;
      } else {
        let backend: KeyedStateBackend | undefined;
        let owns: ((kg: number) => boolean) | undefined;
        if (kind === 'keyed') {
          const { maxParallelism, parallelism } = ctx.vertexPlan(v.id);
          backend = new KeyedStateBackend(maxParallelism);
          const kv = { vertex: v, backend, range: rangeFor(task.index, parallelism, maxParallelism) };
          this.keyed.push(kv);
          if (i === 0) this.keyedHead = kv;
          // Read at each use: a rescale changes the range.
          owns = (kg) => kg >= kv.range.start && kg <= kv.range.end;
        }
        const late = (r: unknown, reason: string) => counters.late(v.id, r, reason);
        const subtask = {
          index: task.index,
          get parallelism() {
            return ctx.vertexPlan(v.id).parallelism;
          },
        };
        const log = operatorLogger(ctx.log, v.id);
        const op = createOperator(v, { backend, deadLetter, time: ctx.time, late, subtask, log, ...(owns && { owns }) });
        if (op.onWatermark || op.onProcessingTime) this.timed.unshift({ op, out: counted });
        const key = () => backend?.currentKey;
        next = {
          emit: (rec) => {
            m.recordsIn++;
            op.process(rec, key(), counted);
          },
        };
        if (i === 0)
          this.headInput = (rec, input) => {
            m.recordsIn++;
            op.process(rec, key(), counted, input);
          };
      }
    }
    this.head = next;
    this.onClock = this.timed.some((t) => t.op.onProcessingTime);
    this.keyGroupRecords = new Uint32Array(this.keyedHead?.backend.maxParallelism ?? 0);
  }

  /**
   * Feeds one input record to the chain's head, scoping keyed state to its key first: the key field of the edge it
   * came by (a join's two inputs key by fields of their own), and for a join, which input it is.
   */
  processInput(rec: Rec, edge?: Edge): void {
    const kv = this.keyedHead;
    if (kv) {
      const field = edge?.key ?? this.keyField!;
      const key = getField(rec, field);
      if (!isKey(key)) return this.counters.deadLetter(kv.vertex.id, rec, `record lacks the key field '${field}'`);
      const kg = keyGroupFor(key, kv.backend.maxParallelism);
      if (kg < kv.range.start || kg > kv.range.end)
        return this.counters.deadLetter(kv.vertex.id, rec, `key group ${kg} is not owned by subtask ${this.ctx.task.index}`);
      kv.backend.setCurrentKey(key, kg);
      this.keyGroupRecords[kg]!++;
      if (edge?.side) return this.headInput!(rec, edge.side === 'right' ? 1 : 0);
    }
    this.head.emit(rec);
  }

  /**
   * The watermark rose to `watermark`: each operator, head first, fires the timers it has due (what they emit flows
   * down the chain before the next operator hears of the watermark).
   */
  advanceWatermark(watermark: number): void {
    this.ctx.time.watermark = watermark;
    for (const { op, out } of this.timed) op.onWatermark?.(watermark, out);
  }

  /** Whether an operator of the chain keeps timers: its event time (the watermark) is part of its state. */
  get hasTimers(): boolean {
    return this.timed.length > 0;
  }

  /** The wall clock reached `now`: operators fire their processing-time timers due by it. */
  processingTime(now: number): void {
    for (const { op, out } of this.timed) op.onProcessingTime?.(now, out);
  }

  /** Records per key group of the keyed head since the last take, as [keyGroup, count] pairs; zeroes them. */
  takeKeyGroupRecords(): Record<string, [number, number][]> | undefined {
    if (!this.keyedHead) return undefined;
    const pairs: [number, number][] = [];
    this.keyGroupRecords.forEach((n, kg) => n && pairs.push([kg, n]));
    this.keyGroupRecords.fill(0);
    return { [this.keyedHead.vertex.id]: pairs };
  }
}
