import { getField, RateLimiter, type EventTimeSettings, type Output } from '@keyflow/core';
import type { Source, SourceOutput } from '../connectors/source.ts';
import type { VertexMetrics } from '../protocol.ts';
import type { Commands } from './commands.ts';
import { now, type SubtaskContext } from './context.ts';
import type { Router } from './router.ts';

/** How long a source that has nothing due waits for commands at most. */
const IDLE_MS = 200;
/** How long a source that had nothing to emit (its broker sent nothing yet) waits before it looks again. */
const STARVED_MS = 10;
/** Waits shorter than this are timers of the event loop, not blocking reads of the command stream. */
const SHORT_WAIT_MS = 20;

/** What a source subtask does with event time: its settings, and where watermarks and idleness go. */
export interface SourceEventTime {
  settings: EventTimeSettings;
  /** The source's watermark rose: the chain fires its timers and the watermark goes downstream. */
  advance(watermark: number): Promise<void>;
  /** Every split of the subtask became idle, or one became active again. */
  status(idle: boolean): Promise<void>;
  /** A record without a usable timestamp. */
  deadLetter(record: unknown, reason: string): void;
}

/** A record field's value as event time: ms since the epoch, or an ISO 8601 text; undefined when it is neither. */
export function eventTimeOf(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  // Short texts are no ISO time, though Date.parse reads some ('5' as a year).
  if (typeof value === 'string' && value.length >= 10) {
    const t = Date.parse(value);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}

/**
 * The loop of a subtask whose chain starts with a source: it emits batches at the source's rate, timestamps each
 * record and tracks its split's watermark, reads commands between batches (a checkpoint's trigger makes it emit the
 * barrier), sends watermarks on their interval, and finishes when the source is exhausted.
 */
export class SourceRunner {
  /** A stop-with-savepoint's trigger came: after its barrier the source emits nothing (unless the savepoint is aborted). */
  stopAfterBarrier = false;
  /** Whether it has events due now (not waiting for its rate): a source waiting for its rate has no backlog. */
  due = true;
  private lastCommandRead = 0;
  private lastWatermarkAt = 0;
  /** The source's output: each record timestamped and counted against its split's watermark, then into the chain. */
  private readonly out: SourceOutput;
  /** The clock of the emit in progress (ingestion time, and split activity). */
  private clock = 0;
  private wallClock = 0;
  /** Milliseconds spent with nothing due (its rate, a broker with nothing new, a stop) since the metrics last asked. */
  private idleMs = 0;

  constructor(
    private readonly ctx: SubtaskContext,
    private readonly source: Source,
    private readonly counters: VertexMetrics,
    private readonly head: Output,
    private readonly commands: Commands,
    private readonly router: Router,
    private readonly afterWork: () => Promise<void>,
    private readonly finish: () => Promise<void>,
    private readonly eventTime: SourceEventTime,
  ) {
    const { timestamps, timestampField } = eventTime.settings;
    const time = ctx.time;
    const watermarks = source.watermarks;
    this.out = {
      emit: (split, rec) => {
        const ts = timestamps === 'ingestion' ? this.wallClock : eventTimeOf(getField(rec, timestampField));
        if (ts === undefined)
          return eventTime.deadLetter(rec, `the timestamp field '${timestampField}' holds no time (ms since the epoch, or an ISO 8601 text)`);
        watermarks.observe(split, ts, this.clock);
        time.timestamp = ts;
        head.emit(rec);
      },
    };
  }

  /** Whether it has events left to emit now, for the metrics' progress. */
  get backlog(): boolean {
    return this.due && this.source.hasBacklog();
  }

  /** Milliseconds it had nothing due since the last call. */
  takeIdle(): number {
    const ms = this.idleMs;
    this.idleMs = 0;
    return ms;
  }

  /** Sends the subtask's watermark when it rose, and says when all its splits went idle or one came back. */
  private async emitWatermark(t: number): Promise<void> {
    const { ctx } = this;
    this.lastWatermarkAt = t;
    const w = this.source.watermarks.current(t);
    if ((w === 'idle') !== ctx.idle) {
      ctx.idle = w === 'idle';
      await this.eventTime.status(ctx.idle);
    }
    if (w !== 'idle' && w > ctx.time.watermark) await this.eventTime.advance(w);
  }

  async run(): Promise<void> {
    const { ctx, source } = this;
    const { settings } = ctx;
    const limiter = new RateLimiter(source.rate, now());
    let starved = false;
    while (!ctx.outcome) {
      // Commands a wait inside a handler left queued.
      await this.commands.drain();
      const t = now();
      // A rescale may have changed this subtask's splits, and so its share of the rate.
      limiter.setRate(source.rate, t);
      const { budget, waitMs } = limiter.allowance(settings.batchSize, t);
      let wait = waitMs;
      if (starved) wait = Math.max(wait, STARVED_MS);
      if (this.stopAfterBarrier) wait = IDLE_MS;
      this.due = wait === 0;
      // Commands are read between batches: blocking while there is long to wait, else every linger period without
      // waiting for the reply (it is taken at the next look). A short wait (the rate's next events, the next linger,
      // a broker with nothing new) is the event loop's own timer: a blocking read for each would cost Redis a command
      // or two per millisecond.
      if (wait > 0) {
        const waitStart = now();
        const ms = this.router.buffered() ? Math.min(wait, settings.lingerMs) : Math.min(wait, IDLE_MS);
        if (ms >= SHORT_WAIT_MS) {
          this.lastCommandRead = now();
          await this.commands.poll(ms);
        } else {
          if (now() - this.lastCommandRead >= settings.lingerMs) {
            this.lastCommandRead = now();
            await this.commands.poke();
          }
          await new Promise((r) => setTimeout(r, ms));
        }
        this.idleMs += now() - waitStart;
      } else if (now() - this.lastCommandRead >= settings.lingerMs) {
        this.lastCommandRead = now();
        await this.commands.poke();
        // A source chained to all its operators awaits nothing else that reaches the event loop: it lets the
        // metrics, the heartbeat and the replies in once a linger period.
        await new Promise((r) => setImmediate(r));
      }
      if (ctx.outcome || this.stopAfterBarrier) continue;
      // After the commands: a rescale handled there may have changed this subtask's splits.
      this.clock = now();
      this.wallClock = Date.now();
      const { produced, exhausted } = source.emit(budget, this.out);
      starved = produced === 0 && !exhausted;
      this.counters.recordsIn += produced;
      limiter.took(produced);
      if (this.clock - this.lastWatermarkAt >= this.eventTime.settings.watermarkInterval) await this.emitWatermark(this.clock);
      await this.afterWork();
      if (exhausted) {
        await this.finish();
        return;
      }
    }
  }
}
