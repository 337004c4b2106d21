import { NexmarkGenerator, nexmarkSettings, NO_WATERMARK, type Rec, type Vertex } from '@keyflow/core';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { redisKeys } from '../keys.ts';
import { silentLogger } from '../logger.ts';
import { nexmarkConfig, NexmarkSource } from './nexmarkSource.ts';
import { createSource, type ConnectorEnv } from './registry.ts';
import { encodeSplit, loadSplit, type SourceOutput } from './source.ts';

const raw = { seed: 3, splits: 4, rate: 400, total: 1000 } as const;
const settings = nexmarkSettings.parse(raw);
const reference = (over: object = {}) => new NexmarkGenerator(nexmarkConfig(nexmarkSettings.parse({ ...raw, ...over })));

/** What a source emitted: each record with the split it came from, and the event number it is (by split and offset). */
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

/** Runs a source to its end in small batches: every record it emits, by event number. */
function drain(source: NexmarkSource, gen: NexmarkGenerator, batch = 7): Map<number, Rec> {
  const byNumber = new Map<number, Rec>();
  const seen = new Map(source.splits.map((s) => [s, 0]));
  const out: SourceOutput = {
    emit: (split, r) => {
      // The record is the next one of its split that the source emits: find its event number by matching.
      let o = seen.get(split)!;
      while (!gen.selects(gen.indexOf(split, o))) o++;
      byNumber.set(gen.indexOf(split, o), r);
      seen.set(split, o + 1);
    },
  };
  for (let i = 0; i < 10_000 && !source.emit(batch, out).exhausted; i++);
  return byNumber;
}

const expected = (gen: NexmarkGenerator, total: number) =>
  new Map(
    Array.from({ length: total }, (_, n) => n)
      .filter((n) => gen.selects(n))
      .map((n) => [n, gen.eventAt(n) as unknown as Rec]),
  );

describe('NexmarkSource', () => {
  it('reads its contiguous share of the splits, paced at its share of the rate; event time from dateTime', () => {
    const s = new NexmarkSource(settings, 1, 2);
    expect(s.splits).toEqual([2, 3]);
    expect([...s.offsets]).toEqual([
      [2, 0],
      [3, 0],
    ]);
    expect(s.rate).toBe(200);
    expect(settings).toMatchObject({ timestamps: 'field', timestampField: 'dateTime' });
    expect(nexmarkConfig(settings).eventsPerSecond).toBe(400);
    expect(nexmarkConfig(nexmarkSettings.parse({ rate: 0 })).eventsPerSecond).toBe(10_000_000);
    expect(nexmarkConfig(nexmarkSettings.parse({ rate: 0, eventsPerSecond: 5 })).eventsPerSecond).toBe(5);
  });

  it('emits round robin over its splits up to the budget, each record with its split, and says when all are exhausted', () => {
    const s = new NexmarkSource(settings, 0, 1);
    const gen = reference();
    const { out, recs, splits } = collect();
    expect(s.emit(3, out)).toEqual({ produced: 3, exhausted: false });
    expect(splits).toEqual([0, 1, 2]);
    expect(recs).toEqual([0, 1, 2].map((n) => gen.eventAt(n)));
    expect([...s.offsets.values()]).toEqual([1, 1, 1, 0]);
    expect(s.emit(10_000, out)).toEqual({ produced: 997, exhausted: true });
    expect(s.hasBacklog()).toBe(false);
  });

  it('goes on where the last call stopped: budgets smaller than the split count serve every split alike', () => {
    const s = new NexmarkSource(settings, 0, 1);
    const { out, splits } = collect();
    for (let i = 0; i < 9; i++) s.emit(i % 2 ? 1 : 2, out);
    // 14 events: 3 rounds over the 4 splits, then the next two.
    expect(splits).toEqual([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1]);
    expect([...s.offsets.values()]).toEqual([4, 4, 3, 3]);
  });

  it.each([1, 2, 3])('at parallelism %i emits exactly the events of the generator, each once', (p) => {
    const gen = reference();
    const got = new Map<number, Rec>();
    for (let i = 0; i < p; i++) for (const [n, r] of drain(new NexmarkSource(settings, i, p), gen)) got.set(n, r);
    expect(got).toEqual(expected(gen, 1000));
  });

  it('restored from offsets (and clocks) taken mid-way, goes on with the very same events', () => {
    const auctionsAndBids = nexmarkSettings.parse({ ...raw, kinds: 'auction,bid' });
    const gen = reference({ kinds: 'auction,bid' });
    const first = new NexmarkSource(auctionsAndBids, 0, 1);
    const { out: before, recs: head } = collect();
    first.emit(333, before);
    const restored = new NexmarkSource(auctionsAndBids, 0, 1);
    for (const split of first.splits) loadSplit(restored, split, encodeSplit(first, split), 0);
    // Split 0 skipped persons: their time is its clock, and the clock travels with the offset.
    expect(restored.watermarks.maxTs(0)).toBeGreaterThan(NO_WATERMARK);
    expect(restored.watermarks.maxTs(0)).toBe(first.watermarks.maxTs(0));
    const { out: after, recs: tail } = collect();
    // The budget and `produced` count events passed, skipped persons included: 1,000 in all.
    expect(restored.emit(10_000, after)).toEqual({ produced: 1000 - 333, exhausted: true });
    const sorted = (recs: unknown[]) => recs.map((r) => JSON.stringify(r)).sort();
    expect(sorted([...head, ...tail])).toEqual(sorted([...expected(gen, 1000).values()]));
  });

  it('after a rescale keeps only the splits it holds, with the offsets it was handed', () => {
    const s = new NexmarkSource(settings, 0, 2);
    s.assign(s.splitsFor(0, 1));
    s.offsets.set(2, 100);
    s.offsets.set(3, 250);
    s.settle();
    expect(s.rate).toBe(400);
    const { out } = collect();
    expect(s.emit(10_000, out).produced).toBe(250 + 250 + 150 + 0);
    const t = new NexmarkSource(settings, 0, 1);
    t.assign(t.splitsFor(1, 2));
    t.settle();
    expect([...t.offsets.keys()]).toEqual([2, 3]);
    expect(t.rate).toBe(200);
  });

  it("with kinds 'bid' emits only the bids, the generator's, and the budget counts every event passed", () => {
    const bids = nexmarkSettings.parse({ ...raw, kinds: 'bid' });
    const gen = reference({ kinds: 'bid' });
    const s = new NexmarkSource(bids, 0, 1);
    const { out, recs } = collect();
    expect(s.emit(20, out).produced).toBe(20);
    // Events 0–19: a person, three auctions and sixteen bids.
    expect(recs).toHaveLength(16);
    expect(recs.every((r) => r.type === 'bid')).toBe(true);
    let all = 0;
    for (let p = 1; p <= 2; p++) {
      const got = new Map<number, Rec>();
      for (let i = 0; i < p; i++) for (const [n, r] of drain(new NexmarkSource(bids, i, p), gen)) got.set(n, r);
      expect(got).toEqual(expected(gen, 1000));
      all = got.size;
    }
    expect(all).toBe(920);
  });

  it('a split whose events are all skipped neither loops for ever nor holds the watermark back', () => {
    // 10 splits, persons only: every person (id ≡ 0 mod 50) falls in split 0.
    const persons = nexmarkSettings.parse({ seed: 3, splits: 10, rate: 0, eventsPerSecond: 1000, kinds: 'person' });
    const s = new NexmarkSource(persons, 0, 1);
    const { out, recs, splits } = collect();
    // One event in 50 is a person: 250 events passed, five persons emitted.
    expect(s.emit(250, out)).toEqual({ produced: 250, exhausted: false });
    expect(recs.map((r) => r.id)).toEqual([1000, 1001, 1002, 1003, 1004]);
    expect(new Set(splits)).toEqual(new Set([0]));
    // The other splits moved their clocks past the events they skipped.
    for (const x of [1, 5, 9]) expect(s.watermarks.maxTs(x)).toBeGreaterThan(Date.UTC(2026, 0, 1));
    expect(s.watermarks.current(performance.now())).not.toBe(NO_WATERMARK);

    const only = new NexmarkSource(persons, 1, 10);
    expect(only.splits).toEqual([1]);
    const { out: none } = collect();
    expect(only.emit(100, none)).toEqual({ produced: 100, exhausted: false });
    expect(only.offsets.get(1)).toBe(100);
    expect(only.watermarks.maxTs(1)).toBeGreaterThan(Date.UTC(2026, 0, 1));
  });

  it('two sources of one stream that emit different kinds pass the same events for the same budget: their clocks keep pace', () => {
    const persons = new NexmarkSource(nexmarkSettings.parse({ ...raw, kinds: 'person' }), 0, 1);
    const auctions = new NexmarkSource(nexmarkSettings.parse({ ...raw, kinds: 'auction' }), 0, 1);
    for (const budget of [7, 100, 333]) {
      expect(persons.emit(budget, collect().out).produced).toBe(budget);
      expect(auctions.emit(budget, collect().out).produced).toBe(budget);
      // The same events passed on every split: the same place in event time.
      expect([...persons.offsets]).toEqual([...auctions.offsets]);
    }
  });

  it('ends a bounded stream whose last events are all skipped', () => {
    const s = new NexmarkSource(nexmarkSettings.parse({ ...raw, kinds: 'person' }), 0, 1);
    const { out, recs } = collect();
    expect(s.emit(5000, out)).toEqual({ produced: 1000, exhausted: true });
    // Each split's persons in order; the splits take turns.
    expect(recs.map((r) => r.id as number).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => 1000 + i));
    expect(s.watermarks.current(0)).toBe(Infinity);
  });

  it('is made by the connector registry for a nexmark vertex', () => {
    const env = {
      index: 1,
      parallelism: 2,
      sink: { jobId: 'j', attempt: 1, index: 1 },
      redis: new Redis({ lazyConnect: true }),
      keys: redisKeys('t'),
      databaseUrl: 'postgresql://nowhere/db',
      deadLetter: () => {},
      connection: (name: string) => Promise.reject(new Error(`no connection ${name}`)),
      logger: silentLogger,
    } satisfies ConnectorEnv;
    const vertex = { id: 'v', type: 'nexmark', name: 'nexmark', parallelism: 2, settings: { splits: 8 } } as unknown as Vertex;
    const source = createSource(vertex, env);
    expect(source).toBeInstanceOf(NexmarkSource);
    expect(source.splits).toEqual([4, 5, 6, 7]);
  });
});
