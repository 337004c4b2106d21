import { EventGenerator, splitsFor, SplitWatermarks, type GeneratorSettings, type Rec } from '@keyflow/core';
import type { Source, SourceOutput } from './source.ts';

/** The built-in generator (DESIGN §4's demo source): deterministic events dealt into splits. */
export class GeneratorSource implements Source {
  private readonly gen: EventGenerator;
  private readonly ratePerSplit: number;
  splits: number[];
  readonly offsets: Map<number, number>;
  readonly watermarks: SplitWatermarks;
  private sizes: Map<number, number>;
  /** Where in `splits` the next call goes on. */
  private next = 0;
  rate: number;

  constructor(settings: GeneratorSettings, index: number, parallelism: number, now = performance.now()) {
    const { startAt, ...config } = settings;
    this.gen = new EventGenerator(startAt === undefined ? config : { ...config, startAt: Date.parse(startAt) });
    this.splits = splitsFor(index, parallelism, settings.splits);
    this.offsets = new Map(this.splits.map((x) => [x, 0]));
    this.watermarks = new SplitWatermarks(settings.watermarkDelay, settings.idleTimeout);
    this.watermarks.assign(this.splits, now);
    this.sizes = this.sizesOf(this.splits);
    const active = settings.splits - settings.idleSplits;
    this.ratePerSplit = settings.rate / active;
    this.rate = this.ratePerSplit * this.activeIn(this.splits);
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
    this.rate = this.ratePerSplit * this.activeIn(this.splits);
  }

  /**
   * Passes up to `budget` events round robin over its splits, going on where the last call stopped: a rate-limited
   * budget smaller than the split count must not always serve the first splits (the others would fall behind, and
   * the slowest split holds the watermark).
   */
  emit(budget: number, out: SourceOutput): { produced: number; exhausted: boolean } {
    const { gen, splits, sizes, offsets } = this;
    const n = splits.length;
    let produced = 0;
    // Splits in a row found exhausted: all of them means nothing is left.
    let empty = 0;
    while (produced < budget && empty < n) {
      if (this.next >= n) this.next = 0;
      const s = splits[this.next++]!;
      const off = offsets.get(s)!;
      if (off >= sizes.get(s)!) {
        // An exhausted split holds no watermark back; an idle one (it never has events) does, until its idle timeout.
        if (!gen.isIdleSplit(s)) this.watermarks.end(s);
        empty++;
        continue;
      }
      empty = 0;
      out.emit(s, gen.eventAt(gen.indexOf(s, off)) as unknown as Rec);
      offsets.set(s, off + 1);
      produced++;
    }
    return { produced, exhausted: !this.hasBacklog() };
  }

  hasBacklog(): boolean {
    return this.splits.some((x) => this.offsets.get(x)! < this.sizes.get(x)!);
  }

  /** How many of `splits` hold events (the rate is dealt over those). */
  private activeIn(splits: readonly number[]): number {
    return splits.filter((x) => !this.gen.isIdleSplit(x)).length;
  }

  private sizesOf(splits: number[]): Map<number, number> {
    return new Map(splits.map((x) => [x, this.gen.splitSize(x)]));
  }
}
