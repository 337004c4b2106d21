import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  Aggregator,
  intersects,
  isWindowLate,
  maxTimestamp,
  mergeSession,
  parseAggregates,
  slidingWindows,
  tumblingWindow,
  windowStart,
  type Aggregate,
  type Window,
} from './windows.ts';

/** KEYFLOW_PROPERTY_RUNS=n runs more cases (default 200); KEYFLOW_PROPERTY_SEED=s replays a run. */
const RUNS = Number(process.env.KEYFLOW_PROPERTY_RUNS ?? 200);
const SEED = Number(process.env.KEYFLOW_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));
beforeAll(() => console.log(`window properties: seed ${SEED}, ${RUNS} runs (replay with KEYFLOW_PROPERTY_SEED=${SEED})`));

const w = (start: number, end: number): Window => ({ start, end });
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe('window assignment', () => {
  it.each<[number, number, number, number]>([
    [0, 10, 0, 0],
    [9, 10, 0, 0],
    [10, 10, 0, 10],
    [12345, 1000, 0, 12000],
    [-1, 10, 0, -10],
    [-10, 10, 0, -10],
    [-11, 10, 0, -20],
    [7, 10, 3, 3],
    [2, 10, 3, -7],
    [3, 10, 3, 3],
    [12, 10, 13, 3],
    [12, 10, -2, 8],
    [-1, 10, 3, -7],
    // Days in UTC+8 (Flink's example, offset −8h): 05:00 UTC on 1 January is 13:00 there, that day began at 16:00 UTC.
    [Date.UTC(2024, 0, 1, 5), DAY, -8 * HOUR, Date.UTC(2023, 11, 31, 16)],
    // Days in UTC−8 take +8h: 05:00 UTC on 1 January is 21:00 on 31 December there, whose day began at 08:00 UTC.
    [Date.UTC(2024, 0, 1, 5), DAY, 8 * HOUR, Date.UTC(2023, 11, 31, 8)],
    [Date.UTC(2024, 0, 1, 8), DAY, 8 * HOUR, Date.UTC(2024, 0, 1, 8)],
  ])('windowStart(%i, size %i, offset %i) = %i', (ts, size, offset, start) => {
    expect(windowStart(ts, size, offset)).toBe(start);
    expect(tumblingWindow(ts, size, offset)).toEqual({ start, end: start + size });
  });

  it.each<[number, number, number, number, Window[]]>([
    [7, 10, 5, 0, [w(5, 15), w(0, 10)]],
    [5, 10, 5, 0, [w(5, 15), w(0, 10)]],
    [4, 10, 5, 0, [w(0, 10), w(-5, 5)]],
    [0, 10, 5, 0, [w(0, 10), w(-5, 5)]],
    [-1, 10, 5, 0, [w(-5, 5), w(-10, 0)]],
    [7, 10, 10, 0, [w(0, 10)]],
    [7, 10, 3, 0, [w(6, 16), w(3, 13), w(0, 10)]],
    [9, 10, 3, 0, [w(9, 19), w(6, 16), w(3, 13), w(0, 10)]],
    [7, 10, 5, 2, [w(7, 17), w(2, 12)]],
    [6, 10, 5, 2, [w(2, 12), w(-3, 7)]],
    [7, 10, 5, -3, [w(7, 17), w(2, 12)]],
  ])('slidingWindows(%i, size %i, slide %i, offset %i), latest first', (ts, size, slide, offset, windows) => {
    expect(slidingWindows(ts, size, slide, offset)).toEqual(windows);
  });

  it('gives size / slide windows that hold the timestamp when the slide divides the size', () => {
    const ws = slidingWindows(1_000_123, 60_000, 1000);
    expect(ws).toHaveLength(60);
    for (const x of ws) expect(x.start <= 1_000_123 && 1_000_123 < x.end).toBe(true);
  });

  it('property: sliding windows are exactly the windows of that size starting at offset + k·slide that hold the timestamp', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -1000, max: 1000 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: -100, max: 100 }),
        (ts, size, slideRaw, offset) => {
          const slide = Math.min(slideRaw, size);
          const expected: Window[] = [];
          for (let start = ts; start > ts - size; start--)
            if ((((start - offset) % slide) + slide) % slide === 0) expected.push(w(start, start + size));
          expect(slidingWindows(ts, size, slide, offset)).toEqual(expected);
          if (slide === size) expect(expected).toEqual([tumblingWindow(ts, size, offset)]);
        },
      ),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it.each<[Window, number]>([
    [w(0, 10), 9],
    [w(-10, 0), -1],
    [w(5, 6), 5],
  ])('the last timestamp of %j is %i', (x, last) => {
    expect(maxTimestamp(x)).toBe(last);
  });

  it.each<[Window, number, number, boolean]>([
    [w(0, 10), 0, 8, false],
    [w(0, 10), 0, 9, true],
    [w(0, 10), 5, 13, false],
    [w(0, 10), 5, 14, true],
    [w(0, 10), 0, -Infinity, false],
    [w(0, 10), 1_000_000, Infinity, true],
    [w(-10, 0), 0, -1, true],
    [w(-10, 0), 0, -2, false],
  ])('%j with allowed lateness %i is late at watermark %d: %s', (x, lateness, wm, late) => {
    expect(isWindowLate(x, lateness, wm)).toBe(late);
  });
});

describe('sessions', () => {
  it.each<[Window, Window, boolean]>([
    [w(0, 10), w(10, 20), false],
    [w(0, 10), w(9, 20), true],
    [w(0, 10), w(11, 20), false],
    [w(0, 10), w(5, 15), true],
    [w(0, 10), w(2, 3), true],
    [w(0, 10), w(-5, 0), false],
    [w(0, 10), w(-5, 1), true],
    [w(0, 10), w(-5, -1), false],
  ])('%j and %j overlap: %s', (a, b, yes) => {
    expect(intersects(a, b)).toBe(yes);
    expect(intersects(b, a)).toBe(yes);
  });

  it.each<[string, Window[], number, number, Window, Window[]]>([
    ['a first session', [], 5, 10, w(5, 15), []],
    ['a record inside a session', [w(0, 20)], 5, 10, w(0, 20), [w(0, 20)]],
    ['a record that extends a session', [w(0, 10)], 5, 10, w(0, 15), [w(0, 10)]],
    ['a record at the last millisecond of a session', [w(0, 10)], 9, 10, w(0, 19), [w(0, 10)]],
    ['a record at the end of a session (a gap apart: a new one)', [w(0, 10)], 10, 10, w(10, 20), []],
    ['a record whose session overlaps the next one', [w(20, 30)], 11, 10, w(11, 30), [w(20, 30)]],
    ['a record whose session ends where the next begins', [w(20, 30)], 10, 10, w(10, 20), []],
    ['a record that bridges two sessions', [w(0, 10), w(30, 40), w(14, 25)], 9, 6, w(0, 25), [w(0, 10), w(14, 25)]],
    ['a record whose merge reaches a session only through another', [w(19, 30), w(9, 20)], 5, 5, w(5, 30), [w(9, 20), w(19, 30)]],
  ])('%s', (_name, sessions, ts, gap, merged, absorbed) => {
    const r = mergeSession(sessions, ts, gap);
    expect(r.merged).toEqual(merged);
    expect([...r.absorbed].sort((a, b) => a.start - b.start)).toEqual(absorbed);
  });

  it('does not change the sessions it is given', () => {
    const sessions = [w(0, 10), w(12, 20)];
    mergeSession(sessions, 10, 2);
    expect(sessions).toEqual([w(0, 10), w(12, 20)]);
  });

  it('property: the merged session is the union of the new one with every session connected to it, and absorbs exactly those', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 300 }), { maxLength: 12, size: 'large' }),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: -20, max: 320 }),
        (times, gap, ts) => {
          // A key's sessions as the operator keeps them: records less than `gap` apart share one.
          const sorted = [...times].sort((a, b) => a - b);
          const sessions: Window[] = [];
          for (const t of sorted) {
            const last = sessions[sessions.length - 1];
            if (last && t < last.end) last.end = t + gap;
            else sessions.push(w(t, t + gap));
          }
          // The oracle: sessions of every record with the new one, computed from scratch.
          const all = [...sorted, ts].sort((a, b) => a - b);
          const fresh: Window[] = [];
          for (const t of all) {
            const last = fresh[fresh.length - 1];
            if (last && t < last.end) last.end = Math.max(last.end, t + gap);
            else fresh.push(w(t, t + gap));
          }
          const expected = fresh.find((x) => x.start <= ts && ts < x.end)!;
          const shuffled = [...sessions].reverse();
          const r = mergeSession(shuffled, ts, gap);
          expect(r.merged).toEqual(expected);
          expect([...r.absorbed].sort((a, b) => a.start - b.start)).toEqual(
            sessions.filter((s) => s.start >= expected.start && s.end <= expected.end),
          );
        },
      ),
      { numRuns: RUNS, seed: SEED },
    );
  });
});

describe('parseAggregates', () => {
  it.each<[string, Aggregate[]]>([
    ['count', [{ fn: 'count', name: 'count' }]],
    ['count()', [{ fn: 'count', name: 'count' }]],
    [
      'count, sum(amount), avg(x.y)',
      [
        { fn: 'count', name: 'count' },
        { fn: 'sum', field: 'amount', name: 'sum_amount' },
        { fn: 'avg', field: 'x.y', name: 'avg_x_y' },
      ],
    ],
    [
      ' min( amount ) ,max(amount),  sum(order.items.total)',
      [
        { fn: 'min', field: 'amount', name: 'min_amount' },
        { fn: 'max', field: 'amount', name: 'max_amount' },
        { fn: 'sum', field: 'order.items.total', name: 'sum_order_items_total' },
      ],
    ],
    [
      'sum(_a1), avg(a_1)',
      [
        { fn: 'sum', field: '_a1', name: 'sum__a1' },
        { fn: 'avg', field: 'a_1', name: 'avg_a_1' },
      ],
    ],
    // Empty parts (a trailing comma) are skipped.
    ['count,', [{ fn: 'count', name: 'count' }]],
    [
      'count as bids, maxBy(top.price) as top',
      [
        { fn: 'count', name: 'bids' },
        { fn: 'maxBy', field: 'top.price', name: 'top' },
      ],
    ],
  ])('%j', (text, aggregates) => {
    expect(parseAggregates(text)).toEqual({ ok: true, aggregates });
  });

  const help = 'count, sum(f), min(f), max(f), avg(f), maxBy(f) or minBy(f), each optionally followed by "as name"';
  const notOne = (p: string) => `'${p}' is not an aggregate: ${help}`;
  it.each<[string, string]>([
    ['', `at least one aggregate: ${help}`],
    [' , ', `at least one aggregate: ${help}`],
    ['max(a) as', notOne('max(a) as')],
    ['max(a) as 1x', notOne('max(a) as 1x')],
    ['count as n, sum(a) as n', "'sum(a) as n': an output named 'n' is listed already"],
    ['count, median(x)', notOne('median(x)')],
    ['sum()', notOne('sum()')],
    ['sum(amount', notOne('sum(amount')],
    ['sum(1x)', notOne('sum(1x)')],
    ['sum(a b)', notOne('sum(a b)')],
    ['count(x)', notOne('count(x)')],
    ['SUM(amount)', notOne('SUM(amount)')],
    ['amount', notOne('amount')],
    ['sum(a), avg(b c), max(', notOne('avg(b c)')],
    ['count, sum(a), count', "'count': an output named 'count' is listed already"],
    ['count(), count', "'count': an output named 'count' is listed already"],
    ['sum(a), sum( a )', "'sum( a )': an output named 'sum_a' is listed already"],
    // Two aggregates that would fill the same output field.
    ['avg(x.y), avg(x_y)', "'avg(x_y)': an output named 'avg_x_y' is listed already"],
  ])('%j: %s', (text, message) => {
    expect(parseAggregates(text)).toEqual({ ok: false, message });
  });
});

describe('Aggregator', () => {
  const parse = (text: string) => {
    const r = parseAggregates(text);
    if (!r.ok) throw new Error(r.message);
    return new Aggregator(r.aggregates);
  };
  const all = parse('count, sum(amount), min(amount), max(amount), avg(amount)');

  it('starts every aggregate empty: one slot each, two for avg', () => {
    expect(all.width).toBe(6);
    expect(all.create()).toEqual([0, 0, Infinity, -Infinity, 0, 0]);
    expect(all.fields).toEqual(['count', 'sum_amount', 'min_amount', 'max_amount', 'avg_amount']);
  });

  it('adds records and reads out every aggregate', () => {
    const acc = all.create();
    for (const amount of [3, -1, 10]) all.add(acc, all.values({ amount }) as number[], { amount });
    expect(all.result(acc)).toEqual({ count: 3, sum_amount: 12, min_amount: -1, max_amount: 10, avg_amount: 4 });
  });

  it('reads nested fields', () => {
    const a = parse('sum(order.total), avg(order.total)');
    const acc = a.create();
    a.add(acc, a.values({ order: { total: 2 } }) as number[], {});
    a.add(acc, a.values({ order: { total: 5 } }) as number[], {});
    expect(a.result(acc)).toEqual({ sum_order_total: 7, avg_order_total: 3.5 });
  });

  it.each<[string, Record<string, unknown>]>([
    ['missing', {}],
    ['a string', { amount: '5' }],
    ['null', { amount: null }],
    ['NaN', { amount: Number.NaN }],
    ['infinite', { amount: Infinity }],
    ['a bigint', { amount: 5n }],
    ['an object', { amount: { value: 5 } }],
  ])('gives the reason when the field is %s', (_name, rec) => {
    expect(all.values(rec)).toBe("window: field 'amount' is not a number");
  });

  it('names the first field that is not a number', () => {
    expect(parse('count, sum(a), max(b)').values({ a: 1, b: 'x' })).toBe("window: field 'b' is not a number");
  });

  it('keeps the whole record with the greatest or least field for maxBy and minBy, under the names given with as', () => {
    const a = parse('maxBy(price) as top, minBy(price), count as n');
    expect(a.fields).toEqual(['top', 'minBy_price', 'n']);
    const acc = a.create();
    expect(a.result(acc)).toEqual({ top: null, minBy_price: null, n: 0 });
    for (const bid of [
      { auction: 1, price: 5 },
      { auction: 2, price: 9 },
      { auction: 3, price: 2 },
    ])
      a.add(acc, a.values(bid) as number[], bid);
    expect(a.result(acc)).toEqual({ top: { auction: 2, price: 9 }, minBy_price: { auction: 3, price: 2 }, n: 3 });
  });

  it('property: maxBy and minBy give the same record whatever the order records come in and however they are merged, ties included', () => {
    const a = parse('maxBy(price), minBy(price)');
    fc.assert(
      fc.property(
        fc.array(fc.record({ auction: fc.integer({ min: 1, max: 5 }), price: fc.integer({ min: 0, max: 3 }) }), { minLength: 1, maxLength: 20 }),
        fc.nat(),
        (bids, cut) => {
          const result = (order: typeof bids) => {
            const at = cut % (order.length + 1);
            const [x, y] = [a.create(), a.create()];
            order.forEach((b, i) => a.add(i < at ? x : y, a.values(b) as number[], b));
            a.merge(x, y);
            return a.result(x);
          };
          expect(result([...bids].reverse())).toEqual(result(bids));
          const top = Math.max(...bids.map((b) => b.price));
          expect((result(bids).maxBy_price as { price: number }).price).toBe(top);
        },
      ),
      { seed: 42 },
    );
  });

  it('counts any record', () => {
    const count = parse('count');
    expect(count.values({})).toEqual([1]);
    expect(count.values({ amount: 'x' })).toEqual([1]);
  });

  it('merges two accumulators as if every record had gone into one', () => {
    const a = all.create();
    const b = all.create();
    for (const amount of [4, 8]) all.add(a, [1, amount, amount, amount, amount], { amount });
    all.add(b, [1, -2, -2, -2, -2], { amount: -2 });
    all.merge(a, b);
    expect(all.result(a)).toEqual({ count: 3, sum_amount: 10, min_amount: -2, max_amount: 8, avg_amount: 10 / 3 });
    // Merging into an empty accumulator copies.
    const c = all.create();
    all.merge(c, b);
    expect(c).toEqual(b);
  });

  it('property: adding values one by one, or in two parts merged, gives the aggregates computed directly', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 1, maxLength: 30, size: 'large' }), fc.nat(), (amounts, cut) => {
        const at = cut % (amounts.length + 1);
        const whole = all.create();
        const left = all.create();
        const right = all.create();
        amounts.forEach((amount, i) => {
          const v = all.values({ amount }) as number[];
          all.add(whole, v, { amount });
          all.add(i < at ? left : right, v, { amount });
        });
        all.merge(left, right);
        const sum = amounts.reduce((s, x) => s + x, 0);
        const expected = {
          count: amounts.length,
          sum_amount: sum,
          min_amount: Math.min(...amounts),
          max_amount: Math.max(...amounts),
          avg_amount: sum / amounts.length,
        };
        expect(all.result(whole)).toEqual(expected);
        expect(all.result(left)).toEqual(expected);
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });
});
