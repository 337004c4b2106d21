import { encodeValue, generatorSettings, NO_WATERMARK, type Rec } from '@keyflow/core';
import { describe, expect, it } from 'vitest';
import { GeneratorSource } from './generatorSource.ts';
import { encodeSplit, loadSplit, type SourceOutput } from './source.ts';

const raw = { seed: 7, keys: 10, splits: 4, rate: 400, total: 10, skew: 'uniform', zipfExponent: 1 } as const;
const settings = generatorSettings.parse(raw);

function collect(): { out: SourceOutput; recs: Rec[]; splits: number[] } {
  const recs: Rec[] = [];
  const splits: number[] = [];
  return {
    out: {
      emit: (split, r) => {
        splits.push(split);
        recs.push(r);
      },
    },
    recs,
    splits,
  };
}

describe('GeneratorSource', () => {
  it('reads its contiguous share of the splits, paced at its share of the rate', () => {
    const s = new GeneratorSource(settings, 1, 2);
    expect(s.splits).toEqual([2, 3]);
    expect([...s.offsets]).toEqual([
      [2, 0],
      [3, 0],
    ]);
    expect(s.rate).toBe(200);
  });

  it('emits round robin over its splits up to the budget, each record with its split, and says when all are exhausted', () => {
    const s = new GeneratorSource(settings, 0, 1);
    const { out, recs, splits } = collect();
    expect(s.emit(3, out)).toEqual({ produced: 3, exhausted: false });
    expect(splits).toEqual([0, 1, 2]);
    expect([...s.offsets.values()]).toEqual([1, 1, 1, 0]);
    // 10 events over 4 splits: sizes 3, 3, 2, 2.
    expect(s.emit(100, out)).toEqual({ produced: 7, exhausted: true });
    expect(recs).toHaveLength(10);
    expect(s.hasBacklog()).toBe(false);
  });

  it('goes on where the last call stopped: budgets smaller than the split count serve every split alike', () => {
    const s = new GeneratorSource(generatorSettings.parse({ ...raw, total: 1000 }), 0, 1);
    const { out, splits } = collect();
    for (let i = 0; i < 9; i++) s.emit(i % 2 ? 1 : 2, out);
    // 14 events: 3 rounds over the 4 splits, then the next two.
    expect(splits).toEqual([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1]);
    expect([...s.offsets.values()]).toEqual([4, 4, 3, 3]);
  });

  it('after a rescale keeps only the splits it holds, with the offsets it was handed', () => {
    const s = new GeneratorSource(settings, 0, 2);
    s.assign(s.splitsFor(0, 1));
    s.offsets.set(2, 1);
    s.offsets.set(3, 2);
    s.settle();
    expect(s.rate).toBe(400);
    const { out } = collect();
    expect(s.emit(100, out).produced).toBe(3 + 3 + 1 + 0);

    const t = new GeneratorSource(settings, 0, 1);
    t.assign(t.splitsFor(1, 2));
    t.settle();
    expect([...t.offsets.keys()]).toEqual([2, 3]);
    expect(t.rate).toBe(200);
  });

  it("keeps a split's offset and event-time clock together, and reads what older checkpoints stored (an offset alone)", () => {
    const s = new GeneratorSource(settings, 0, 1);
    s.offsets.set(1, 2);
    s.watermarks.observe(1, 5000, 0);
    const t = new GeneratorSource(settings, 0, 1);
    expect(loadSplit(t, 1, encodeSplit(s, 1), 0)).toBe(2);
    expect(t.watermarks.maxTs(1)).toBe(5000);
    loadSplit(t, 2, encodeValue({ offset: 42 }), 0);
    expect(t.offsets.get(2)).toBe(42);
    expect(t.watermarks.maxTs(2)).toBe(NO_WATERMARK);
  });

  it('deals events only into active splits; idle splits hold the watermark back until their idle timeout', () => {
    const bounded = generatorSettings.parse({ ...raw, idleSplits: 1 });
    const s = new GeneratorSource(bounded, 0, 1, 0);
    const { out, recs, splits } = collect();
    expect(s.emit(100, out)).toEqual({ produced: 10, exhausted: true });
    expect(new Set(splits)).toEqual(new Set([0, 1, 2]));
    expect(new Set(recs.map((r) => r.ts)).size).toBe(10);
    expect(s.rate).toBe(400);

    const { total: _, ...unbounded } = raw;
    const u = new GeneratorSource(generatorSettings.parse({ ...unbounded, idleSplits: 1, idleTimeout: '1s' }), 0, 1, 0);
    for (const x of [0, 1, 2]) u.watermarks.observe(x, 100, 900);
    // Split 3 never has data: the watermark waits for it, then leaves it out once it has been idle for 1 s.
    expect(u.watermarks.current(900)).toBe(NO_WATERMARK);
    expect(u.watermarks.current(1000)).toBe(99);
    expect(u.watermarks.isIdle(3, 1000)).toBe(true);
  });
});
