import { EventGenerator, type GeneratorSettings, type Output, type Rec } from '@keyflow/core';
import type { Source } from './source.ts';

/** The built-in generator (DESIGN §4's demo source): deterministic events dealt into splits. */
export class GeneratorSource implements Source {
  private readonly gen: EventGenerator;
  private readonly ratePerSplit: number;
  splits: number[];
  readonly offsets: Map<number, number>;
  private sizes: Map<number, number>;
  rate: number;

  constructor(settings: GeneratorSettings, index: number, parallelism: number) {
    this.gen = new EventGenerator(settings);
    this.splits = EventGenerator.splitsFor(index, parallelism, settings.splits);
    this.offsets = new Map(this.splits.map((x) => [x, 0]));
    this.sizes = this.sizesOf(this.splits);
    this.rate = (settings.rate * this.splits.length) / settings.splits;
    this.ratePerSplit = settings.rate / settings.splits;
  }

  splitsFor(index: number, parallelism: number): number[] {
    return EventGenerator.splitsFor(index, parallelism, this.gen.config.splits);
  }

  assign(splits: number[]): void {
    this.splits = splits;
  }

  settle(): void {
    for (const split of [...this.offsets.keys()]) if (!this.splits.includes(split)) this.offsets.delete(split);
    this.sizes = this.sizesOf(this.splits);
    this.rate = this.ratePerSplit * this.splits.length;
  }

  emit(budget: number, out: Output): { produced: number; exhausted: boolean } {
    const { gen, splits, sizes, offsets } = this;
    let produced = 0;
    while (produced < budget) {
      let progressed = false;
      for (const s of splits) {
        const off = offsets.get(s)!;
        if (off >= sizes.get(s)!) continue;
        progressed = true;
        out.emit(gen.eventAt(gen.indexOf(s, off)) as unknown as Rec);
        offsets.set(s, off + 1);
        if (++produced >= budget) break;
      }
      if (!progressed) break;
    }
    return { produced, exhausted: !this.hasBacklog() };
  }

  hasBacklog(): boolean {
    return this.splits.some((x) => this.offsets.get(x)! < this.sizes.get(x)!);
  }

  private sizesOf(splits: number[]): Map<number, number> {
    return new Map(splits.map((x) => [x, this.gen.splitSize(x)]));
  }
}
