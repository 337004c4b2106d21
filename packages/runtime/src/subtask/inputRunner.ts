import { BarrierAligner, chainOf, decodeBatch, producersFor, WatermarkValve, type Edge, type Rec } from '@keyflow/core';
import { parseEntry, timeAt, type ChannelEntry } from '../channels.ts';
import type { RescaleSpec, SubtaskProgress } from '../protocol.ts';
import type { OperatorChain } from './chain.ts';
import { nextId, type Commands } from './commands.ts';
import { now, type SubtaskContext } from './context.ts';
import type { Counters } from './counters.ts';
import type { HandoverLoader } from './handoverLoader.ts';

/** What XREAD returns: per stream key, its entries (id and field list). */
type ReadResult = [key: Buffer, entries: [id: Buffer, fields: Buffer[]][]][];

interface InputChannel {
  key: string;
  /** The edge it belongs to: its key field, and for a join which input it is. */
  edge: Edge;
  /** The producer subtask, as `chainId#index`. */
  producer: string;
  lastId: string;
  lastSeq: number;
}

/** What the input loop does with what it read: the chain, a barrier's checkpoint, the end. */
export interface InputHandlers {
  /** Barrier n aligned on every input (DESIGN §5): the subtask's checkpoint, and the rescale it carries. */
  atBarrier(n: number, checkpointId: number, alignmentMs: number, rescale?: RescaleSpec): Promise<void>;
  /** Every input ended. */
  finish(): Promise<void>;
  /** Between reads: flushes, sink writes. */
  afterWork(): Promise<void>;
  /**
   * Within a read whose records have taken SLICE_MS: sends what is ready and lets the event loop turn (metrics,
   * replies, the other subtasks of the process), so a slow operator makes the subtask slow, never unresponsive.
   */
  betweenSlices(): Promise<void>;
  /** How long a read may block: short while output waits to be sent. */
  blockMs(): number;
  /** The input watermark rose (DESIGN §11): the chain fires its timers and the watermark goes on downstream. */
  watermark(watermark: number): Promise<void>;
  /** Every input became idle, or one became active again: downstream is told. */
  status(idle: boolean): Promise<void>;
}

/**
 * How long the records of one read are processed before the event loop gets a turn. A read brings up to 8 entries
 * per input channel of up to a batch each: at a user operator's 0.2 ms a record that is seconds of work, during which
 * the subtask would report nothing and look stuck, and the sources beside it in the process would emit nothing.
 */
const SLICE_MS = 5;
/** Records processed between two looks at the clock. */
const CLOCK_EVERY = 64;

/**
 * The loop of a subtask that reads input channels: one blocking XREAD over its commands, a preload's handover
 * and every readable channel; entries de-duplicated by producer sequence, batches decoded into the chain,
 * barriers fed to the aligner; read entries trimmed.
 */
export class InputRunner {
  private inputs: InputChannel[] = [];
  private aligner: BarrierAligner | undefined;
  /** The input watermark over the input channels. */
  readonly valve = new WatermarkValve([]);
  /** A watermark that a change of the inputs (a rescale) raised, to pass on after the next read. */
  private pendingWatermark: number | undefined;
  /** Entries taken from the input channels since the metrics last asked (see takeRead). */
  private entriesRead = 0;
  /** Milliseconds spent waiting for a read's reply since the metrics last asked (see takeIdle). */
  private idleMs = 0;
  /** A barrier's checkpoint id and rescale, for when the end of another input completes its alignment. */
  private pendingCheckpointId: number | undefined;
  private pendingRescale: RescaleSpec | undefined;
  /** When the event loop last had a turn while this loop worked through a read (see SLICE_MS). */
  private sliceStart = 0;

  constructor(
    private readonly ctx: SubtaskContext,
    private readonly chain: OperatorChain,
    private readonly counters: Counters,
    private readonly commands: Commands,
    private readonly loader: HandoverLoader,
    private readonly on: InputHandlers,
  ) {}

  /**
   * Makes the input channels match the plan: at open, and after a rescale changed it. A channel the plan keeps
   * keeps its read position; one it lost is dropped (its last entry was the rescale's barrier); a new one starts empty.
   */
  sync(): void {
    const { ctx } = this;
    const { index } = ctx.task;
    const inputs = new Map(this.inputs.map((c) => [c.key, c]));
    this.inputs = ctx.chain.inputs.flatMap((edge) => {
      const producer = chainOf(ctx.chains, edge.from)!;
      return producersFor(edge, index, producer.parallelism).map((i) => {
        const key = ctx.channelKey(edge, i, index);
        return inputs.get(key) ?? { key, edge, producer: `${producer.id}#${i}`, lastId: '0-0', lastSeq: 0 };
      });
    });
    const kept = new Set(this.inputs.map((c) => c.key));
    // A channel that left ended with the rescale's barrier; one that joins counts once it caught up (see the valve).
    for (const key of inputs.keys()) if (!kept.has(key)) this.raised(this.valve.remove(key));
    for (const c of this.inputs) if (!inputs.has(c.key)) this.valve.add(c.key);
    if (!this.aligner) return;
    for (const key of inputs.keys()) if (!kept.has(key)) this.aligner.removeChannel(key);
    for (const c of this.inputs) if (!inputs.has(c.key)) this.aligner.addChannel(c.key);
  }

  /**
   * One XREAD over the commands, a preload's handover and `readable`, each from the id given (default: its last);
   * blocking while there is nothing, unless `ahead`.
   */
  private read(readable: InputChannel[], from: ReadonlyMap<string, string> = new Map(), ahead = false): Promise<ReadResult | null> {
    const { ctx, commands } = this;
    const pre = this.loader.preload;
    const keys = [commands.key, ...(pre ? [pre.key] : []), ...readable.map((c) => c.key)];
    const ids = [commands.lastId, ...(pre ? [pre.lastId] : []), ...readable.map((c) => c.lastId)];
    const at = keys.map((k, i) => from.get(k) ?? ids[i]!);
    if (ahead) return ctx.blocking.xreadBuffer('COUNT', 8, 'STREAMS', ...keys, ...at) as Promise<ReadResult | null>;
    // Never BLOCK 0 (Redis waits for ever then), whatever the linger.
    const blockMs = Math.max(1, this.on.blockMs());
    return ctx.deadline.within(
      blockMs,
      () => ctx.blocking.xreadBuffer('COUNT', 8, 'BLOCK', blockMs, 'STREAMS', ...keys, ...at) as Promise<ReadResult | null>,
    );
  }

  /**
   * The next read, sent before this result is worked through so that Redis's reply comes while the records are
   * processed: only when the result holds record batches and watermarks alone. A barrier, an end, a command or a
   * preload may change what is readable; then the next read waits until they were handled. It does not block: when
   * nothing came meanwhile, the loop reads again, blocking, after it sent its output.
   */
  private readAhead(res: ReadResult | null, readable: InputChannel[]): Promise<ReadResult | null> | undefined {
    if (!res || this.loader.preload) return undefined;
    const from = new Map<string, string>();
    for (const [keyBuf, entries] of res) {
      const key = keyBuf.toString();
      if (key === this.commands.key) return undefined;
      for (const [, fields] of entries) {
        const type = fields[1]?.toString();
        if (fields[0]?.toString() !== 't' || (type !== 'b' && type !== 'm')) return undefined;
      }
      if (entries.length) from.set(key, entries.at(-1)![0].toString());
    }
    const next = this.read(readable, from, true);
    // A subtask that ends meanwhile never takes the reply; its failure is the next loop's, if there is one.
    next.catch(() => {});
    return next;
  }

  async run(): Promise<void> {
    const { ctx, commands, loader } = this;
    const aligner = (this.aligner = new BarrierAligner(this.inputs.map((c) => c.key)));
    let ahead: { res: Promise<ReadResult | null>; readable: InputChannel[] } | undefined;
    while (!ctx.outcome) {
      // Commands a wait inside a barrier's rescale left queued.
      await commands.drain();
      let readable: InputChannel[] = [];
      let res: ReadResult | null = null;
      const waitStart = now();
      if (ahead) {
        ({ readable } = ahead);
        res = await ahead.res;
        ahead = undefined;
      }
      if (!res) {
        readable = this.inputs.filter((c) => aligner.openChannels.has(c.key) && !aligner.isBlocked(c.key));
        res = await this.read(readable);
        // The loop turned while the read waited for Redis (a read ahead's reply may have been there: no turn).
        this.sliceStart = now();
      }
      this.idleMs += now() - waitStart;
      const next = this.readAhead(res, readable);
      if (next) ahead = { res: next, readable };
      const pre = loader.preload;
      if (this.pendingWatermark !== undefined) {
        const w = this.pendingWatermark;
        this.pendingWatermark = undefined;
        await this.onWatermark(w);
      }
      for (const [keyBuf, entries] of res ?? []) {
        const key = keyBuf.toString();
        if (key === pre?.key) {
          // Pre-copies of groups this subtask will gain: loaded now, between batches, not while it pauses at the barrier.
          loader.applyPreload(pre, entries);
          continue;
        }
        if (key === commands.key) {
          commands.take(entries);
          await commands.drain();
          continue;
        }
        // A channel a rescale dropped since the read was sent: what it brought is not this subtask's any more.
        const ch = this.inputs.find((c) => c.key === key);
        if (!ch) continue;
        for (const [idBuf, fields] of entries) {
          if (aligner.isBlocked(key) || !aligner.openChannels.has(key)) break;
          this.entriesRead++;
          const id = idBuf.toString();
          const entry = parseEntry(fields);
          ch.lastId = id;
          if (!entry) {
            this.counters.deadLetter(
              ctx.chain.id,
              fields.map((f) => f.toString('base64')),
              `malformed channel entry ${id} on ${key}`,
            );
            continue;
          }
          if (entry.seq <= ch.lastSeq) continue;
          ch.lastSeq = entry.seq;
          if (entry.type === 'batch') await this.feed(entry.data, entry.times, ch.edge);
          else if (entry.type === 'watermark') await this.onWatermark(this.valve.onWatermark(key, entry.watermark));
          else if (entry.type === 'idle') await this.onWatermark(this.valve.onIdle(key));
          else if (entry.type === 'active') {
            this.valve.onActive(key);
            await this.onWatermark(undefined);
          } else if (await this.onMarker(key, entry)) return;
        }
        // Consumers trim what they have read, the last read entry included.
        void ctx.redis.xtrim(key, 'MINID', nextId(ch.lastId)).catch(() => {});
      }
      await this.on.afterWork();
    }
  }

  /** What the valve said: a risen watermark goes to the chain and on; a change of idleness is passed on. */
  private async onWatermark(risen: number | undefined): Promise<void> {
    if (this.ctx.idle !== this.valve.idle) {
      this.ctx.idle = this.valve.idle;
      await this.on.status(this.ctx.idle);
    }
    if (risen !== undefined) await this.on.watermark(risen);
  }

  /** A rescale changed the inputs and that raised the watermark: passed on with the next read's work. */
  private raised(risen: number | undefined): void {
    if (risen !== undefined) this.pendingWatermark = risen;
  }

  /**
   * Decodes a batch into the chain, each record with its event time; what cannot be decoded goes to the dead letters.
   * Every SLICE_MS of processing (since the last turn of the event loop: `sliceStart`) it lets the loop turn.
   */
  private async feed(data: Buffer, times: Buffer | undefined, edge: Edge): Promise<void> {
    const chainId = this.ctx.chain.id;
    let records: unknown[];
    try {
      records = decodeBatch(data);
    } catch (err) {
      this.counters.deadLetter(chainId, data.toString('base64'), `undecodable batch: ${(err as Error).message}`);
      return;
    }
    const time = this.ctx.time;
    for (let i = 0; i < records.length; i++) {
      if (i % CLOCK_EVERY === CLOCK_EVERY - 1 && now() - this.sliceStart >= SLICE_MS) {
        await this.on.betweenSlices();
        this.sliceStart = now();
      }
      const r = records[i];
      time.timestamp = timeAt(times, i);
      if (r === null || typeof r !== 'object') this.counters.deadLetter(chainId, r, 'record is not an object');
      else this.chain.processInput(r as Rec, edge);
    }
  }

  /** Feeds a barrier or an input's end to the aligner, checkpointing when it aligned; true when every input ended. */
  private async onMarker(key: string, entry: Exclude<ChannelEntry, { type: 'batch' }>): Promise<boolean> {
    const aligner = this.aligner!;
    const t = now();
    const result = entry.type === 'barrier' ? aligner.onBarrier(key, entry.checkpoint, t) : aligner.onEnd(key, t);
    // An ended input holds no watermark back; when the last one ends the watermark is the end's (every window fires).
    if (entry.type === 'end') await this.onWatermark(this.valve.remove(key));
    if (result.kind === 'aligned') {
      const id = entry.type === 'barrier' ? entry.checkpointId : this.pendingCheckpointId;
      const rescale = entry.type === 'barrier' ? entry.rescale : this.pendingRescale;
      await this.on.atBarrier(result.checkpoint, id!, result.alignmentMs, rescale);
    } else if (entry.type === 'barrier') {
      this.pendingCheckpointId = entry.checkpointId;
      this.pendingRescale = entry.rescale;
    }
    if (!aligner.allEnded) return false;
    await this.on.finish();
    return true;
  }

  /** Entries taken from its input channels since the last call, of any kind. */
  takeRead(): number {
    const n = this.entriesRead;
    this.entriesRead = 0;
    return n;
  }

  /** Milliseconds it waited for input (a read's reply) since the last call. */
  takeIdle(): number {
    const ms = this.idleMs;
    this.idleMs = 0;
    return ms;
  }

  /** Entries waiting in its input channels. */
  async backlog(): Promise<number> {
    if (!this.inputs.length) return 0;
    return (await Promise.all(this.inputs.map((c) => this.ctx.redis.xlen(c.key)))).reduce((a, b) => a + b, 0);
  }

  /** The checkpoint it is aligning on, for how long, and the producers whose barrier it waits for. */
  aligning(t: number): SubtaskProgress['aligning'] {
    const a = this.aligner;
    if (a?.pendingCheckpoint === undefined) return undefined;
    return {
      checkpoint: a.pendingCheckpoint,
      forMs: Math.round(t - a.alignmentStartedAt),
      missing: this.inputs.filter((c) => a.openChannels.has(c.key) && !a.isBlocked(c.key)).map((c) => c.producer),
    };
  }
}
