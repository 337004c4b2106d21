/** No watermark yet: nothing about event time is known. */
export const NO_WATERMARK = -Infinity;
/** The watermark at the end of a stream: every window can fire. */
export const END_WATERMARK = Infinity;

interface SplitClock {
  /** The largest event time seen on the split. */
  maxTs: number;
  /** When it last had data (the caller's clock, ms). */
  activeAt: number;
  /** Exhausted: it holds nothing back any more. */
  ended: boolean;
}

/**
 * A source subtask's watermarks, per split (DESIGN §11): bounded out-of-orderness, `wm = max seen − bound − 1`,
 * and its output the minimum over its splits that are neither exhausted nor idle (no data for `idleTimeoutMs`).
 * A split's largest event time is its state, kept in checkpoints and handed over with the split by a rescale.
 */
export class SplitWatermarks {
  private readonly splits = new Map<number, SplitClock>();

  constructor(
    private readonly boundMs: number,
    private readonly idleTimeoutMs: number | undefined,
  ) {}

  /** Takes the splits a subtask reads now: kept ones keep their clock, new ones start unknown and active. */
  assign(splits: readonly number[], now: number): void {
    for (const s of [...this.splits.keys()]) if (!splits.includes(s)) this.splits.delete(s);
    for (const s of splits) if (!this.splits.has(s)) this.splits.set(s, { maxTs: NO_WATERMARK, activeAt: now, ended: false });
  }

  /** A split's largest event time as a checkpoint or a handover restores it. */
  load(split: number, maxTs: number | undefined, now: number): void {
    this.splits.set(split, { maxTs: maxTs ?? NO_WATERMARK, activeAt: now, ended: false });
  }

  /** A split's largest event time so far, for its state. */
  maxTs(split: number): number {
    return this.splits.get(split)?.maxTs ?? NO_WATERMARK;
  }

  observe(split: number, ts: number, now: number): void {
    const c = this.splits.get(split);
    if (!c) return;
    if (ts > c.maxTs) c.maxTs = ts;
    c.activeAt = now;
  }

  /** The split has no more data, ever. */
  end(split: number): void {
    const c = this.splits.get(split);
    if (c) c.ended = true;
  }

  /** Whether a split counts as idle now. */
  isIdle(split: number, now: number): boolean {
    const c = this.splits.get(split);
    return !!c && !c.ended && this.idleTimeoutMs !== undefined && now - c.activeAt >= this.idleTimeoutMs;
  }

  /**
   * The subtask's watermark now: the minimum over active splits; `END_WATERMARK` when every split is exhausted;
   * `'idle'` when every split that is not exhausted is idle, or when it reads no split at all.
   */
  current(now: number): number | 'idle' {
    // Without splits it holds nothing back, but it is not at the end: a live rescale may give it some.
    if (this.splits.size === 0) return 'idle';
    let min = END_WATERMARK;
    let active = 0;
    let idle = 0;
    for (const [s, c] of this.splits) {
      if (c.ended) continue;
      if (this.isIdle(s, now)) {
        idle++;
        continue;
      }
      active++;
      min = Math.min(min, c.maxTs === NO_WATERMARK ? NO_WATERMARK : c.maxTs - this.boundMs - 1);
    }
    return active === 0 && idle > 0 ? 'idle' : min;
  }
}

/** One input channel as the valve sees it. */
export interface ChannelWatermark {
  watermark: number;
  idle: boolean;
  /** Counts toward the minimum: false for a channel that came back (or joined) behind the output until it caught up. */
  aligned: boolean;
}

/**
 * A subtask's input watermark over its input channels (Flink's StatusWatermarkValve): the minimum over channels
 * that are active and aligned, forwarded only when it rises. An idle channel is left out; when it becomes active
 * again it rejoins only once its watermark has caught up with the output, so the output never goes back. When every
 * channel is idle the output may rise to the highest of their watermarks, and the subtask is idle itself. Pure:
 * the caller feeds markers in channel order.
 */
export class WatermarkValve {
  private readonly channels = new Map<string, ChannelWatermark>();
  private out = NO_WATERMARK;

  constructor(channels: Iterable<string>) {
    for (const c of channels) this.channels.set(c, { watermark: NO_WATERMARK, idle: false, aligned: true });
  }

  /** The input watermark: the newest one forwarded. */
  get current(): number {
    return this.out;
  }

  /** Whether every input channel is idle (the subtask's output is idle too). */
  get idle(): boolean {
    if (this.channels.size === 0) return false;
    for (const c of this.channels.values()) if (!c.idle) return false;
    return true;
  }

  /** Every channel's watermark and status, for the metrics. */
  get inputs(): ReadonlyMap<string, ChannelWatermark> {
    return this.channels;
  }

  /** A watermark arrived on a channel (it makes an idle channel active): the new output when it rose. */
  onWatermark(channel: string, watermark: number): number | undefined {
    const c = this.channels.get(channel);
    if (!c) return undefined;
    if (c.idle) this.activate(c);
    if (watermark > c.watermark) c.watermark = watermark;
    if (!c.aligned && c.watermark >= this.out) c.aligned = true;
    return this.advance();
  }

  /** A channel said it is idle: it holds nothing back until it becomes active again. */
  onIdle(channel: string): number | undefined {
    const c = this.channels.get(channel);
    if (!c || c.idle) return undefined;
    c.idle = true;
    c.aligned = false;
    if (this.idle) {
      // Every input idle: the output may go to the highest watermark any of them reached.
      let max = NO_WATERMARK;
      for (const x of this.channels.values()) max = Math.max(max, x.watermark);
      if (max > this.out) return (this.out = max);
      return undefined;
    }
    return this.advance();
  }

  /** A channel said it is active again (data follows). */
  onActive(channel: string): void {
    const c = this.channels.get(channel);
    if (c?.idle) this.activate(c);
  }

  /**
   * Starts the output at `watermark` (what the subtask's state was checkpointed or handed over at): nothing below it
   * is forwarded, and records at or behind it are late, as they were before the recovery or rescale.
   */
  floor(watermark: number): void {
    if (watermark > this.out) this.out = watermark;
  }

  /** A channel that joins (a producer a rescale added): it counts once it has caught up with the output. */
  add(channel: string): void {
    if (!this.channels.has(channel)) this.channels.set(channel, { watermark: NO_WATERMARK, idle: false, aligned: this.out === NO_WATERMARK });
  }

  /** A channel that left or ended: the new output when that raised it. */
  remove(channel: string): number | undefined {
    if (!this.channels.delete(channel)) return undefined;
    if (this.channels.size === 0) return this.out < END_WATERMARK ? (this.out = END_WATERMARK) : undefined;
    return this.advance();
  }

  private activate(c: ChannelWatermark): void {
    c.idle = false;
    c.aligned = c.watermark >= this.out;
  }

  private advance(): number | undefined {
    let min = END_WATERMARK;
    let counted = 0;
    for (const c of this.channels.values()) {
      if (c.idle || !c.aligned) continue;
      counted++;
      if (c.watermark < min) min = c.watermark;
    }
    if (counted === 0 || min <= this.out) return undefined;
    return (this.out = min);
  }
}
