import {
  ALL_CONSUMERS,
  chainOf,
  consumersFor,
  edgeProjection,
  getField,
  NO_KEY,
  NO_WATERMARK,
  Partitioner,
  type Edge,
  type Rec,
} from '@keyflow/core';
import { ChannelWriter } from '../channels.ts';
import type { RescaleSpec } from '../protocol.ts';
import type { SubtaskContext, SubtaskOutcome } from './context.ts';
import type { Counters } from './counters.ts';

/**
 * Ends after which nothing this subtask sent is still wanted, so its writers stop waiting on a full or lost channel:
 * a newer attempt runs (fenced), the job or the rescale it joined was canceled, its worker is closing. A stop
 * (stop-with-savepoint, scaled away) is not one: its records before the barrier were sent when the barrier was.
 */
const ENDED = new Set<SubtaskOutcome | undefined>(['fenced', 'canceled', 'aborted']);

interface Route {
  edge: Edge;
  writers: ChannelWriter[];
  /** The consumer subtask of each writer, as `chainId#index`. */
  consumers: string[];
  partitioner: Partitioner;
  /** The only fields the consumer reads, when it reads only some (`edgeProjection`): records are cut to them. */
  fields: readonly string[] | undefined;
}

/** A record with only `fields` (those it has). */
function project(rec: Rec, fields: readonly string[]): Rec {
  const out: Rec = {};
  for (const f of fields) {
    const v = rec[f];
    if (v !== undefined) out[f] = v;
  }
  return out;
}

/** The subtask's outputs: one route per outgoing edge, its channel writers, and which channel each record takes. */
export class Router {
  private routes: Route[] = [];
  /** The routes of the main output, and of each side output by name. */
  private main: Route[] = [];
  private side = new Map<string, Route[]>();

  constructor(
    private readonly ctx: SubtaskContext,
    private readonly counters: Counters,
  ) {}

  /**
   * Makes the output writers match the plan: at open, and after a rescale changed it. A channel the plan keeps
   * keeps its writer; one it lost is dropped (its last entry was the rescale's barrier); a new one starts empty,
   * under a name no earlier incarnation of its ends ever used.
   */
  sync(): void {
    const { ctx } = this;
    const { index } = ctx.task;
    const writers = new Map(this.writers().map((w) => [w.key, w] as const));
    this.routes = ctx.chain.outputs.map((edge) => {
      const consumer = chainOf(ctx.chains, edge.to)!;
      const to = consumersFor(edge, index, consumer.parallelism);
      const rr = this.routes.find((r) => r.edge === edge)?.partitioner.next ?? index;
      return {
        edge,
        writers: to.map((j) => {
          const key = ctx.channelKey(edge, index, j);
          return writers.get(key) ?? this.opened(key);
        }),
        consumers: to.map((j) => `${consumer.id}#${j}`),
        partitioner: new Partitioner(edge.partitioning, consumer.parallelism, ctx.vertexPlan(edge.to).maxParallelism, to.length, rr),
        fields: edgeProjection(edge, consumer),
      };
    });
    this.main = this.routes.filter((r) => !r.edge.output);
    this.side = new Map();
    for (const r of this.routes) if (r.edge.output) this.side.set(r.edge.output, [...(this.side.get(r.edge.output) ?? []), r]);
  }

  /** A new output channel (at open, or a consumer a rescale added): it learns this subtask's event time at once. */
  private opened(key: string): ChannelWriter {
    const { ctx } = this;
    const w = new ChannelWriter(ctx.redis, key, ctx.settings, undefined, () => ENDED.has(ctx.outcome));
    // The watermark is sent only when it rises: a consumer that joins late would otherwise wait for the next rise.
    if (ctx.time.watermark > NO_WATERMARK) void w.watermark(ctx.time.watermark);
    if (ctx.idle) void w.status(true);
    return w;
  }

  /** Sends a record the chain emitted on every route of its main output, to the channels its edge's partitioning picks. */
  readonly emit = (rec: Rec): void => {
    this.send(this.main, rec);
  };

  /** Sends a record to the routes of the side output `name`; one without an edge goes nowhere, as in Flink. */
  readonly emitTo = (name: string, rec: Rec): void => {
    const routes = this.side.get(name);
    if (routes) this.send(routes, rec);
  };

  private send(routes: Route[], rec: Rec): void {
    const ts = this.ctx.time.timestamp;
    for (const r of routes) {
      const key = r.edge.partitioning === 'hash' ? getField(rec, r.edge.key!) : undefined;
      const target = r.partitioner.target(key);
      if (target === NO_KEY) {
        this.counters.deadLetter(r.edge.to, rec, `record lacks the key field '${r.edge.key}'`);
        continue;
      }
      const out = r.fields ? project(rec, r.fields) : rec;
      if (target === ALL_CONSUMERS) for (const w of r.writers) w.push(out, ts);
      else r.writers[target]!.push(out, ts);
    }
  }

  /** Every output channel of this subtask. */
  writers(): ChannelWriter[] {
    return this.routes.flatMap((r) => r.writers);
  }

  /** Whether a partial batch waits to be sent. */
  buffered(): boolean {
    return this.writers().some((w) => w.buffered > 0);
  }

  /** Sends full batches (waiting under backpressure); with `all`, partial ones too. */
  async flush(all: boolean): Promise<void> {
    await Promise.all(this.writers().map((w) => w.flush(all)));
  }

  /** Sends barrier n after the records before it on every output channel. */
  async barrier(n: number, checkpointId: number, rescale?: RescaleSpec): Promise<void> {
    await Promise.all(this.writers().map((w) => w.barrier(n, checkpointId, rescale)));
  }

  /** Sends a watermark after the records before it on every output channel (DESIGN §11: in band, like barriers). */
  async watermark(watermark: number): Promise<void> {
    await Promise.all(this.writers().map((w) => w.watermark(watermark)));
  }

  /** Tells every consumer this subtask is idle (holds no watermark back) or active again. */
  async status(idle: boolean): Promise<void> {
    await Promise.all(this.writers().map((w) => w.status(idle)));
  }

  /** Ends every output channel. */
  async end(): Promise<void> {
    await Promise.all(this.writers().map((w) => w.end()));
  }

  /** The longest wait on a full channel since the last take, ms. */
  takeBackpressure(): number {
    let waited = 0;
    for (const w of this.writers()) waited = Math.max(waited, w.takeBackpressure());
    return waited;
  }

  /** Consumer subtasks whose channel from this one is full right now. */
  blockedOn(): string[] {
    return this.routes.flatMap((r) => r.writers.flatMap((w, j) => (w.waiting ? [r.consumers[j]!] : [])));
  }
}
