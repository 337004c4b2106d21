import { aggregateOperator, type Key } from '@keyflow/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OperatorHarness, type HarnessSnapshot } from './testing.ts';

// The built-in running aggregate on the engine's own binding and backend: per key, and over a changelog (upsertKey),
// where a record replaces the last one of its id, across snapshots and rescales.

const SEED = Number(process.env.KEYFLOW_PROPERTY_SEED ?? Date.now() % 2 ** 31);
const RUNS = Number(process.env.KEYFLOW_PROPERTY_RUNS ?? 100);

describe('aggregate', () => {
  it('emits every key’s running aggregates on each record', () => {
    const h = OperatorHarness.create(aggregateOperator, { keyField: 'user', settings: { aggregates: 'count, sum(amount), max(amount) as top' } });
    h.process({ user: 'a', amount: 3 });
    h.process({ user: 'b', amount: 1 });
    h.process({ user: 'a', amount: 5 });
    expect(h.records()).toEqual([
      { key: 'a', count: 1, sum_amount: 3, top: 3 },
      { key: 'b', count: 1, sum_amount: 1, top: 1 },
      { key: 'a', count: 2, sum_amount: 8, top: 5 },
    ]);
  });

  it('with upsertKey, a record replaces the last of its id: the average of each auction’s latest highest bid per category', () => {
    const h = OperatorHarness.create(aggregateOperator, {
      keyField: 'category',
      settings: { aggregates: 'avg(price) as avgPrice, count', upsertKey: 'auction' },
    });
    h.process({ category: 10, auction: 1, price: 100 });
    h.process({ category: 10, auction: 2, price: 300 });
    h.process({ category: 10, auction: 1, price: 200 });
    expect(h.records().map((r) => [r.avgPrice, r.count])).toEqual([
      [100, 1],
      [200, 2],
      [250, 2],
    ]);
  });

  it('with upsertKey and an aggregate that cannot take a record back (max, maxBy), works it out over the latest records', () => {
    const h = OperatorHarness.create(aggregateOperator, { keyField: 'k', settings: { aggregates: 'max(v), maxBy(v) as top', upsertKey: 'id' } });
    h.process({ k: 1, id: 'x', v: 9 });
    h.process({ k: 1, id: 'y', v: 4 });
    h.process({ k: 1, id: 'x', v: 1 });
    expect(h.records().at(-1)).toEqual({ key: 1, max_v: 4, top: { k: 1, id: 'y', v: 4 } });
  });

  it('says nothing when a record leaves the aggregates as they were, before and after a restore, as Flink’s group aggregate', () => {
    const settings = { aggregates: 'maxBy(price) as top' };
    const h = OperatorHarness.create(aggregateOperator, { keyField: 'auction', settings });
    h.process({ auction: 1, price: 10 });
    h.process({ auction: 1, price: 7 });
    h.process({ auction: 1, price: 12 });
    expect(h.records().map((r) => (r.top as { price: number }).price)).toEqual([10, 12]);
    // Restored, the accumulator's record is a copy: a lower bid still changes nothing, a higher one does.
    const [restored] = OperatorHarness.rescale(aggregateOperator, [h.snapshot()], 1, { settings });
    restored!.process({ auction: 1, price: 11 }, { key: 1 });
    restored!.process({ auction: 1, price: 13 }, { key: 1 });
    expect(restored!.records().map((r) => (r.top as { price: number }).price)).toEqual([13]);

    // Over a changelog: a record replaced by its equal changes nothing; by another value, it does.
    const up = OperatorHarness.create(aggregateOperator, {
      keyField: 'category',
      settings: { aggregates: 'avg(price) as avgPrice', upsertKey: 'auction' },
    });
    up.process({ category: 10, auction: 1, price: 100 });
    up.process({ category: 10, auction: 1, price: 100 });
    up.process({ category: 10, auction: 1, price: 300 });
    expect(up.records().map((r) => r.avgPrice)).toEqual([100, 300]);
    const byMax = OperatorHarness.create(aggregateOperator, { keyField: 'k', settings: { aggregates: 'maxBy(v) as top', upsertKey: 'id' } });
    byMax.process({ k: 1, id: 'x', v: 5 });
    byMax.process({ k: 1, id: 'y', v: 2 });
    byMax.process({ k: 1, id: 'x', v: 5 });
    expect(byMax.records().map((r) => r.top)).toEqual([{ k: 1, id: 'x', v: 5 }]);
  });

  it('dead-letters a record whose field is no number, or whose upsert key is missing, with the reason', () => {
    const h = OperatorHarness.create(aggregateOperator, { keyField: 'k', settings: { aggregates: 'sum(v)', upsertKey: 'id' } });
    h.process({ k: 1, id: 'x', v: 'nine' });
    h.process({ k: 1, v: 2 });
    expect(h.deadLetters().map((d) => d.reason)).toEqual([
      "aggregate: field 'v' is not a number",
      "aggregate: field 'id' is not a string or a number",
    ]);
    expect(h.records()).toEqual([]);
  });

  it('refuses aggregates that do not parse', () => {
    expect(() => OperatorHarness.create(aggregateOperator, { keyField: 'k', settings: { aggregates: 'median(v)' } })).toThrow(/is not an aggregate/);
  });

  it(`property: across snapshots and rescales, each key's last output covers exactly the latest record per id (seed ${SEED})`, () => {
    console.log(`aggregate property: seed ${SEED}, ${RUNS} runs (replay with KEYFLOW_PROPERTY_SEED=${SEED})`);
    const rec = fc.record({ k: fc.integer({ min: 0, max: 6 }), id: fc.integer({ min: 0, max: 5 }), v: fc.integer({ min: -50, max: 50 }) });
    const phase = fc.record({ parallelism: fc.integer({ min: 1, max: 4 }), records: fc.array(rec, { maxLength: 20 }) });
    fc.assert(
      fc.property(
        fc.array(phase, { minLength: 1, maxLength: 5 }),
        fc.constantFrom('avg(v), count, sum(v)', 'max(v), min(v), maxBy(v)'),
        (phases, aggregates) => {
          const settings = { aggregates, upsertKey: 'id' };
          let hs = [OperatorHarness.create(aggregateOperator, { keyField: 'k', settings, maxParallelism: 16 })];
          const latest = new Map<Key, Map<number, number>>();
          const last = new Map<Key, Record<string, unknown>>();
          for (const { parallelism, records } of phases) {
            for (const r of records) {
              const h = hs.find((x) => x.owns(r.k))!;
              const before = h.records().length;
              h.process(r, { key: r.k });
              const out = h.records().slice(before);
              // One output when the aggregates changed, none when they did not: the last one says them either way.
              expect(out.length).toBeLessThanOrEqual(1);
              if (out[0]) last.set(r.k, out[0]);
              latest.set(r.k, (latest.get(r.k) ?? new Map()).set(r.id, r.v));
              expectCovers(r.k);
            }
            hs = OperatorHarness.rescale(aggregateOperator, snapshotsOf(hs), parallelism, { settings });
          }
          for (const k of latest.keys()) expectCovers(k);

          function expectCovers(k: Key) {
            const vs = [...latest.get(k)!.values()];
            const sum = vs.reduce((a, b) => a + b, 0);
            const got = last.get(k)!;
            if (aggregates.startsWith('avg')) {
              expect(got).toMatchObject({ key: k, count: vs.length, sum_v: sum });
              expect(got.avg_v).toBeCloseTo(sum / vs.length, 9);
            } else {
              expect(got).toMatchObject({ key: k, max_v: Math.max(...vs), min_v: Math.min(...vs) });
              expect((got.maxBy_v as { v: number }).v).toBe(Math.max(...vs));
            }
          }
        },
      ),
      { numRuns: RUNS, seed: SEED },
    );
  });
});

function snapshotsOf(hs: readonly { snapshot(): HarnessSnapshot }[]): HarnessSnapshot[] {
  return hs.map((h) => h.snapshot());
}
