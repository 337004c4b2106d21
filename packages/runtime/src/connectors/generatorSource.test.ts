import type { Rec } from '@keyflow/core';
import { describe, expect, it } from 'vitest';
import { GeneratorSource } from './generatorSource.ts';
import { decodeOffset, encodeOffset } from './source.ts';

const settings = { seed: 7, keys: 10, splits: 4, rate: 400, total: 10, skew: 'uniform' as const, zipfExponent: 1 };

function collect(): { out: { emit(r: Rec): void }; recs: Rec[] } {
  const recs: Rec[] = [];
  return { out: { emit: (r) => recs.push(r) }, recs };
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

  it('emits round robin over its splits up to the budget, and says when all are exhausted', () => {
    const s = new GeneratorSource(settings, 0, 1);
    const { out, recs } = collect();
    expect(s.emit(3, out)).toEqual({ produced: 3, exhausted: false });
    expect([...s.offsets.values()]).toEqual([1, 1, 1, 0]);
    // 10 events over 4 splits: sizes 3, 3, 2, 2.
    expect(s.emit(100, out)).toEqual({ produced: 7, exhausted: true });
    expect(recs).toHaveLength(10);
    expect(s.hasBacklog()).toBe(false);
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

  it('stores an offset as checkpoints always did', () => {
    expect(decodeOffset(encodeOffset(42))).toBe(42);
  });
});
