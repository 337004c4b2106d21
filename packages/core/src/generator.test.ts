import { describe, expect, it } from 'vitest';
import { EventGenerator, type GeneratorConfig } from './generator.ts';
import { splitsFor } from './keyGroups.ts';

const base: GeneratorConfig = { seed: 42, keys: 1000, skew: 'uniform', zipfExponent: 1, splits: 16 };
const gen = (over: Partial<GeneratorConfig> = {}) => new EventGenerator({ ...base, ...over });
const events = (g: EventGenerator, n: number) => Array.from({ length: n }, (_, i) => g.eventAt(i));

function keyCounts(g: EventGenerator, n: number): number[] {
  const counts = new Array<number>(g.config.keys).fill(0);
  for (let i = 0; i < n; i++) counts[g.keyIndexAt(i)]!++;
  return counts;
}

describe('EventGenerator determinism', () => {
  it('pins the first events of seed 42, so a changed generator cannot silently change replays', () => {
    expect(events(gen(), 3)).toEqual([
      { user: 'u322', item: 'i237', amount: 93, ts: Date.UTC(2026, 0, 1) },
      { user: 'u233', item: 'i991', amount: 54, ts: Date.UTC(2026, 0, 1) + 1 },
      { user: 'u799', item: 'i134', amount: 2, ts: Date.UTC(2026, 0, 1) + 2 },
    ]);
  });

  it.each([
    ['uniform', 'uniform'],
    ['zipf', 'zipf'],
  ] as const)('the same seed gives the same events (%s)', (_n, skew) => {
    expect(events(gen({ skew }), 500)).toEqual(events(gen({ skew }), 500));
  });

  it.each([
    [42, 43],
    [0, 1],
    [1, 2],
    [7, -7],
  ])('seed %i and seed %i give different events', (a, b) => {
    const ea = events(gen({ seed: a }), 200);
    const eb = events(gen({ seed: b }), 200);
    const same = ea.filter((e, i) => e.user === eb[i]!.user).length;
    expect(same).toBeLessThan(20);
  });

  it('eventAt depends only on the index, not on what was asked before', () => {
    const sequential = events(gen({ skew: 'zipf' }), 1000);
    const g = gen({ skew: 'zipf' });
    const order = Array.from({ length: 1000 }, (_, i) => (i * 7919) % 1000);
    for (const i of order) expect(g.eventAt(i)).toEqual(sequential[i]);
  });

  it('makes distinct events beyond 2^32 and keeps ts = epoch + index', () => {
    const g = gen();
    const far = 2 ** 32 + 5;
    expect(g.eventAt(far)).not.toEqual({ ...g.eventAt(5), ts: g.eventAt(far).ts });
    expect(g.eventAt(far).ts - g.eventAt(0).ts).toBe(far);
  });

  it('keeps fields in range: users u0…u(keys-1), items i0…i999, amounts 1…100', () => {
    const g = gen({ keys: 37 });
    for (const e of events(g, 5000)) {
      expect(e.user).toMatch(/^u(\d|[12]\d|3[0-6])$/);
      expect(e.item).toMatch(/^i\d{1,3}$/);
      expect(e.amount).toBeGreaterThanOrEqual(1);
      expect(e.amount).toBeLessThanOrEqual(100);
    }
  });
});

describe('EventGenerator key skew', () => {
  const n = 20_000;

  it.each([1, 1.5])('zipf (exponent %s): key 0 is the most frequent and far above a uniform share', (zipfExponent) => {
    const counts = keyCounts(gen({ skew: 'zipf', keys: 100, zipfExponent }), n);
    const top = Math.max(...counts);
    expect(counts[0]).toBe(top);
    expect(counts[0]!).toBeGreaterThan(10 * (n / 100));
    // Ranks fall off: the first key beats the second, which beats the tenth.
    expect(counts[0]!).toBeGreaterThan(counts[1]!);
    expect(counts[1]!).toBeGreaterThan(counts[9]!);
  });

  it('zipf with exponent 1 gives key 0 about 1/H(keys) of the events', () => {
    const keys = 100;
    const harmonic = Array.from({ length: keys }, (_, r) => 1 / (r + 1)).reduce((a, b) => a + b);
    const share = keyCounts(gen({ skew: 'zipf', keys }), n)[0]! / n;
    expect(share).toBeGreaterThan(0.9 / harmonic);
    expect(share).toBeLessThan(1.1 / harmonic);
  });

  it.each([10, 100, 1000])('uniform over %i keys is roughly flat (chi-square near its degrees of freedom)', (keys) => {
    const total = 50_000;
    const counts = keyCounts(gen({ keys }), total);
    const expected = total / keys;
    expect(Math.min(...counts)).toBeGreaterThan(0);
    const chi = counts.reduce((s, o) => s + (o - expected) ** 2 / expected, 0);
    // df = keys - 1; a wildly skewed or biased draw lands far above this bound.
    expect(chi).toBeLessThan((keys - 1) * 1.3 + 30);
    expect(Math.max(...counts) / expected).toBeLessThan(keys <= 100 ? 1.25 : 1.6);
  });
});

describe('EventGenerator splits', () => {
  it.each([
    [1, 1],
    [1, 16],
    [5, 3],
    [16, 16],
    [17, 16],
    [100, 7],
    [1000, 16],
    [3, 1],
  ])('indexOf/splitSize cover every index of [0, %i) exactly once over %i splits', (total, splits) => {
    const g = gen({ total, splits });
    const seen = new Array<number>(total).fill(0);
    let outside = 0;
    for (let s = 0; s < splits; s++)
      for (let o = 0; o < g.splitSize(s); o++) {
        const i = g.indexOf(s, o);
        if (i < 0 || i >= total) outside++;
        else seen[i]!++;
      }
    expect(outside).toBe(0);
    expect(seen.every((c) => c === 1)).toBe(true);
  });

  it('has unbounded splits without a total', () => {
    expect(gen().splitSize(3)).toBe(Infinity);
  });

  it.each([1, 2, 3, 7, 16, 17])('splitsFor deals %i splits contiguously to every parallelism up to it', (splits) => {
    for (let p = 1; p <= splits; p++) {
      const assigned = Array.from({ length: p }, (_, i) => splitsFor(i, p, splits));
      for (const own of assigned) {
        expect(own.length).toBeGreaterThan(0);
        expect(own).toEqual(Array.from({ length: own.length }, (_, k) => own[0]! + k));
      }
      expect(assigned.flat()).toEqual(Array.from({ length: splits }, (_, s) => s));
    }
  });

  it('splitsFor 16 splits over 3 subtasks as key groups are dealt', () => {
    expect([0, 1, 2].map((i) => splitsFor(i, 3, 16))).toEqual([
      [0, 1, 2, 3, 4, 5],
      [6, 7, 8, 9, 10],
      [11, 12, 13, 14, 15],
    ]);
  });
});

describe('EventGenerator event time', () => {
  const EPOCH = Date.UTC(2026, 0, 1);

  it('spaces events by msPerEvent and moves each back by at most the out-of-orderness, the same on every replay', () => {
    const g = gen({ msPerEvent: 0.5, outOfOrderness: 100 });
    const times = Array.from({ length: 10_000 }, (_, i) => g.timeAt(i));
    times.forEach((t, i) => {
      const place = EPOCH + Math.floor(i * 0.5);
      expect(t).toBeLessThanOrEqual(place);
      expect(t).toBeGreaterThanOrEqual(place - 100);
    });
    expect(new Set(times.map((t, i) => EPOCH + Math.floor(i * 0.5) - t)).size).toBeGreaterThan(50);
    expect(times).toEqual(Array.from({ length: 10_000 }, (_, i) => gen({ msPerEvent: 0.5, outOfOrderness: 100 }).timeAt(i)));
  });

  it('makes every n-th event late by lateBy, once the stream is that far in', () => {
    const g = gen({ lateEvery: 10, lateBy: 50 });
    // Events 9, 19, … are late, from the first one 50 ms into the stream (59) on.
    expect([9, 49, 59, 69, 70].map((i) => g.isLate(i))).toEqual([false, false, true, true, false]);
    expect(g.timeAt(59)).toBe(EPOCH + 59 - 50);
    expect(g.timeAt(60)).toBe(EPOCH + 60);
  });

  it('deals events only into active splits: idle splits hold none, and none is lost', () => {
    const g = gen({ splits: 4, idleSplits: 1, total: 10 });
    expect([0, 1, 2, 3].map((s) => g.splitSize(s))).toEqual([4, 3, 3, 0]);
    const indices = [0, 1, 2].flatMap((s) => Array.from({ length: g.splitSize(s) }, (_, o) => g.indexOf(s, o)));
    expect(indices.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(g.isIdleSplit(3)).toBe(true);
  });
});

describe('EventGenerator start', () => {
  it('starts event time at startAt when given, the same events otherwise', () => {
    const start = Date.UTC(2026, 10, 29);
    const a = gen({ msPerEvent: 2 });
    const b = gen({ msPerEvent: 2, startAt: start });
    expect(b.timeAt(10)).toBe(start + 20);
    expect({ ...b.eventAt(10), ts: 0 }).toEqual({ ...a.eventAt(10), ts: 0 });
  });
});
