import {
  NexmarkGenerator,
  nexmarkKindsOf,
  NO_WATERMARK,
  splitsFor,
  SplitWatermarks,
  type NexmarkConfig,
  type NexmarkSettings,
  type Rec,
} from '@keyflow/core';
import type { Source, SourceOutput } from './source.ts';

/** The event-time rate of a source that emits as fast as it can and names none. */
const UNPACED_EVENTS_PER_SECOND = 10_000_000;
/** Events a split passes in one turn, at most, before the next split has its turn. */
const STEP = 64;

/** The generator config of a `nexmark` source's settings. */
export function nexmarkConfig(settings: NexmarkSettings): NexmarkConfig {
  const { seed, rate, eventsPerSecond, total, splits, kinds, startAt, outOfOrderGroupSize } = settings;
  return {
    seed,
    eventsPerSecond: eventsPerSecond ?? (rate > 0 ? rate : UNPACED_EVENTS_PER_SECOND),
    total,
    splits,
    startAt: startAt === undefined ? undefined : Date.parse(startAt),
    personAvgSize: settings.personAvgSize,
    auctionAvgSize: settings.auctionAvgSize,
    bidAvgSize: settings.bidAvgSize,
    outOfOrderGroupSize,
    hotAuctionRatio: settings.hotAuctionRatio,
    hotBiddersRatio: settings.hotBiddersRatio,
    hotSellersRatio: settings.hotSellersRatio,
    kinds: nexmarkKindsOf(kinds),
  };
}

/**
 * The Nexmark benchmark's events (persons, auctions, bids) dealt into splits, like the generator source: a split's
 * offset is the next event it looks at. Events of kinds it does not emit are skipped, their time still moving the
 * split's event-time clock, so a split that holds none of the emitted kinds does not hold the watermark back.
 */
export class NexmarkSource implements Source {
  private readonly gen: NexmarkGenerator;
  private readonly ratePerSplit: number;
  /** How a skipped event moves its split's clock: by its dateTime, by the wall clock (ingestion time), or not at all. */
  private readonly skippedTime: 'event' | 'ingestion' | undefined;
  splits: number[];
  readonly offsets: Map<number, number>;
  readonly watermarks: SplitWatermarks;
  private sizes: Map<number, number>;
  /** Where in `splits` the next call's turn begins. */
  private next = 0;
  rate: number;

  constructor(settings: NexmarkSettings, index: number, parallelism: number, now = performance.now()) {
    this.gen = new NexmarkGenerator(nexmarkConfig(settings));
    this.splits = splitsFor(index, parallelism, settings.splits);
    this.offsets = new Map(this.splits.map((x) => [x, 0]));
    this.watermarks = new SplitWatermarks(settings.watermarkDelay, settings.idleTimeout);
    this.watermarks.assign(this.splits, now);
    this.sizes = this.sizesOf(this.splits);
    this.skippedTime = settings.timestamps === 'ingestion' ? 'ingestion' : settings.timestampField === 'dateTime' ? 'event' : undefined;
    this.ratePerSplit = settings.rate / settings.splits;
    this.rate = this.ratePerSplit * this.splits.length;
  }

  splitsFor(index: number, parallelism: number): number[] {
    return splitsFor(index, parallelism, this.gen.config.splits);
  }

  assign(splits: number[]): void {
    this.splits = splits;
  }

  settle(now = performance.now()): void {
    for (const split of [...this.offsets.keys()]) if (!this.splits.includes(split)) this.offsets.delete(split);
    this.watermarks.assign(this.splits, now);
    this.sizes = this.sizesOf(this.splits);
    this.rate = this.ratePerSplit * this.splits.length;
  }

  /**
   * Passes up to `budget` events round robin over its splits, emitting those of the kinds it emits and skipping the
   * rest. Skipped events count: the source's rate and its `recordsIn` are events of the stream, as Nexmark counts
   * them, so two sources of one stream that emit different kinds (persons and auctions of a join) keep the same pace
   * through it, and their event time with it. A turn goes on where the last call's stopped: a budget smaller than
   * the split count must not always serve the first splits (the slowest split holds the watermark).
   */
  emit(budget: number, out: SourceOutput): { produced: number; exhausted: boolean } {
    const { gen, splits, sizes, offsets } = this;
    const n = splits.length;
    let passed = 0;
    while (passed < budget) {
      // One turn: every split passes as many events (its timeline keeps pace with the others'), at most STEP.
      const step = Math.max(1, Math.min(STEP, Math.ceil((budget - passed) / n)));
      let progressed = false;
      const first = this.next % n;
      for (let i = 0; i < n; i++) {
        const s = splits[(first + i) % n]!;
        const size = sizes.get(s)!;
        const from = offsets.get(s)!;
        if (from >= size) {
          this.watermarks.end(s);
          continue;
        }
        const end = Math.min(size, from + step, from + budget - passed);
        let skippedFrom = -1;
        for (let off = from; off < end; off++) {
          const n = gen.indexOf(s, off);
          if (gen.selects(n)) {
            if (skippedFrom >= 0) this.skipped(s, skippedFrom, off);
            skippedFrom = -1;
            out.emit(s, gen.eventAt(n) as unknown as Rec);
          } else if (skippedFrom < 0) skippedFrom = off;
        }
        if (skippedFrom >= 0) this.skipped(s, skippedFrom, end);
        offsets.set(s, end);
        passed += end - from;
        progressed = true;
        if (end >= size) this.watermarks.end(s);
        if (passed >= budget) {
          this.next = first + i + 1;
          break;
        }
      }
      if (!progressed) break;
    }
    return { produced: passed, exhausted: !this.hasBacklog() };
  }

  hasBacklog(): boolean {
    return this.splits.some((x) => this.offsets.get(x)! < this.sizes.get(x)!);
  }

  /** Split `split` passed over its events [from, to): their time counts as seen, as if they had been emitted. */
  private skipped(split: number, from: number, to: number): void {
    if (this.skippedTime === undefined) return;
    let ts = NO_WATERMARK;
    if (this.skippedTime === 'ingestion') ts = Date.now();
    else for (let o = from; o < to; o++) ts = Math.max(ts, this.gen.dateTimeAt(this.gen.indexOf(split, o)));
    this.watermarks.observe(split, ts, performance.now());
  }

  private sizesOf(splits: number[]): Map<number, number> {
    return new Map(splits.map((x) => [x, this.gen.splitSize(x)]));
  }
}
