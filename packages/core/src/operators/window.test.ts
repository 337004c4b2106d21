import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Rec } from '../codec.ts';
import { parseDuration } from '../duration.ts';
import type { Key } from '../hashing.ts';
import { keyGroupFor, keyGroupsOf, rangeFor, type KeyGroupRange } from '../keyGroups.ts';
import { KeyedStateBackend } from '../stateBackend.ts';
import { NO_WATERMARK } from '../watermarks.ts';
import { createOperator, type RecordTime, type StreamOperator } from './index.ts';

/** KEYFLOW_PROPERTY_RUNS=n runs more streams (default 100); KEYFLOW_PROPERTY_SEED=s replays a run. */
const RUNS = Number(process.env.KEYFLOW_PROPERTY_RUNS ?? 100);
const SEED = Number(process.env.KEYFLOW_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));

/**
 * One window operator over its own backend, driven as the runtime drives it: the record's timestamp in the shared
 * time and the backend scoped to its key before `process`, `onWatermark` when the input watermark rises.
 */
function harness(settings: Record<string, unknown>, backend = new KeyedStateBackend(128), opts: { late?: boolean } = {}) {
  const time: RecordTime = { timestamp: undefined, watermark: NO_WATERMARK };
  let out: Rec[] = [];
  const dead: { record: unknown; reason: string }[] = [];
  const late: { record: unknown; reason: string }[] = [];
  const op = createOperator(
    { id: 'w', type: 'window', parallelism: 1, settings },
    {
      backend,
      time,
      deadLetter: (record, reason) => dead.push({ record, reason }),
      ...(opts.late !== false && { late: (record: unknown, reason: string) => late.push({ record, reason }) }),
    },
  );
  const output = {
    emit: (r: Rec) => {
      // A window's result is timestamped at its last millisecond.
      expect(time.timestamp).toBe((r.windowEnd as number) - 1);
      out.push(r);
    },
  };
  return {
    backend,
    time,
    dead,
    late,
    feed(key: Key, ts: number | undefined, rec: Rec = {}) {
      time.timestamp = ts;
      backend.setCurrentKey(key);
      op.process(rec, key, output);
      expect(time.timestamp).toBe(ts);
    },
    watermark(wm: number) {
      op.onWatermark!(wm, output);
      expect(time.watermark).toBe(wm);
    },
    processingTime(now: number) {
      op.onProcessingTime!(now, output);
    },
    /** What it emitted since the last call. */
    take(): Rec[] {
      const r = out;
      out = [];
      return r;
    },
  };
}

const byWindow = (rs: Rec[]) =>
  [...rs].sort((a, b) => (a.windowStart as number) - (b.windowStart as number) || String(a.key).localeCompare(String(b.key)));
const ALL_GROUPS = keyGroupsOf({ start: 0, end: 127 });

describe('window operator: tumbling', () => {
  it('emits one result per key and window when the watermark reaches its last millisecond', () => {
    const h = harness({ size: '10ms', aggregates: 'count, sum(amount)' });
    h.feed('a', 1, { amount: 1 });
    h.feed('a', 5, { amount: 2 });
    h.feed('b', 7, { amount: 10 });
    h.feed('a', 12, { amount: 5 });
    h.watermark(8);
    expect(h.take()).toEqual([]);
    h.watermark(9);
    expect(byWindow(h.take())).toEqual([
      { key: 'a', windowStart: 0, windowEnd: 10, count: 2, sum_amount: 3 },
      { key: 'b', windowStart: 0, windowEnd: 10, count: 1, sum_amount: 10 },
    ]);
    h.watermark(18);
    expect(h.take()).toEqual([]);
    h.watermark(Infinity);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 10, windowEnd: 20, count: 1, sum_amount: 5 }]);
    // Fired and past their (zero) allowed lateness: nothing is left in state, timers included.
    expect(h.backend.keyCount()).toBe(0);
    expect([h.dead, h.late]).toEqual([[], []]);
  });

  it('counts one-minute windows by default', () => {
    const h = harness({});
    h.feed('a', 59_999);
    h.feed('a', 60_000);
    h.watermark(60_000);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 0, windowEnd: 60_000, count: 1 }]);
  });

  it('shifts windows by the offset, and places negative timestamps', () => {
    const h = harness({ size: '10ms', offset: '3ms' });
    for (const ts of [2, 3, 12, 13, -8]) h.feed('a', ts);
    h.watermark(Infinity);
    expect(h.take()).toEqual([
      { key: 'a', windowStart: -17, windowEnd: -7, count: 1 },
      { key: 'a', windowStart: -7, windowEnd: 3, count: 1 },
      { key: 'a', windowStart: 3, windowEnd: 13, count: 2 },
      { key: 'a', windowStart: 13, windowEnd: 23, count: 1 },
    ]);
    const n = harness({ size: '10ms', offset: '-2ms' });
    n.feed('a', -1);
    n.feed('a', 7);
    n.feed('a', 8);
    n.watermark(Infinity);
    expect(n.take()).toEqual([
      { key: 'a', windowStart: -2, windowEnd: 8, count: 2 },
      { key: 'a', windowStart: 8, windowEnd: 18, count: 1 },
    ]);
  });

  it("fires a key's windows in time order when one watermark passes several", () => {
    const h = harness({ size: '10ms' });
    // Out of order within the bound: the later window is made first.
    h.feed('a', 25);
    h.feed('a', 12);
    h.feed('a', 3);
    h.watermark(Infinity);
    expect(h.take().map((r) => r.windowStart)).toEqual([0, 10, 20]);
  });

  it('computes several aggregates at once, over nested fields', () => {
    const h = harness({ size: '1s', aggregates: 'count, sum(o.amount), min(o.amount), max(o.amount), avg(o.amount), avg(qty)' });
    h.feed('a', 100, { o: { amount: 4 }, qty: 1 });
    h.feed('a', 200, { o: { amount: -2 }, qty: 2 });
    h.feed('a', 300, { o: { amount: 10 }, qty: 6 });
    h.watermark(999);
    expect(h.take()).toEqual([
      { key: 'a', windowStart: 0, windowEnd: 1000, count: 3, sum_o_amount: 12, min_o_amount: -2, max_o_amount: 10, avg_o_amount: 4, avg_qty: 3 },
    ]);
  });

  it('keeps keys of different types apart', () => {
    const h = harness({ size: '10ms' });
    for (const k of [1, '1', 1n, true, 1]) h.feed(k, 5);
    h.watermark(9);
    expect(h.take().map((r) => [r.key, r.count])).toEqual([
      [1, 2],
      ['1', 1],
      [1n, 1],
      [true, 1],
    ]);
  });
});

describe('window operator: sliding', () => {
  it('adds a record to every window that holds it, and fires each at its end', () => {
    const h = harness({ assigner: 'sliding', size: '10ms', slide: '5ms', aggregates: 'count, sum(amount)' });
    h.feed('a', 7, { amount: 1 });
    h.feed('a', 12, { amount: 2 });
    h.watermark(9);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 0, windowEnd: 10, count: 1, sum_amount: 1 }]);
    h.watermark(14);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 5, windowEnd: 15, count: 2, sum_amount: 3 }]);
    h.watermark(19);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 10, windowEnd: 20, count: 1, sum_amount: 2 }]);
    expect(h.backend.keyCount()).toBe(0);
  });

  it('with an offset and a slide that does not divide the size', () => {
    const h = harness({ assigner: 'sliding', size: '10ms', slide: '4ms', offset: '1ms' });
    h.feed('a', 10);
    h.watermark(Infinity);
    // Windows start at 1 + 4k and hold 10: [1, 11), [5, 15), [9, 19).
    expect(h.take().map((r) => [r.windowStart, r.windowEnd])).toEqual([
      [1, 11],
      [5, 15],
      [9, 19],
    ]);
  });

  it('takes a record behind the watermark into the windows still open, and sends it late when none is', () => {
    const h = harness({ assigner: 'sliding', size: '10ms', slide: '5ms' });
    h.feed('a', 11);
    h.watermark(10);
    expect(h.take()).toEqual([]);
    // 7 is behind the watermark: [0, 10) is done, [5, 15) is not.
    h.feed('a', 7);
    h.feed('a', 3);
    expect(h.late.map((l) => l.record)).toEqual([{}]);
    h.watermark(Infinity);
    expect(h.take()).toEqual([
      { key: 'a', windowStart: 5, windowEnd: 15, count: 2 },
      { key: 'a', windowStart: 10, windowEnd: 20, count: 1 },
    ]);
  });
});

describe('window operator: session', () => {
  it('closes a session after the gap without records, per key', () => {
    const h = harness({ assigner: 'session', gap: '5ms', aggregates: 'count, sum(amount)' });
    h.feed('a', 0, { amount: 1 });
    h.feed('a', 3, { amount: 2 });
    h.feed('b', 2, { amount: 7 });
    h.feed('a', 20, { amount: 4 });
    h.watermark(6);
    expect(h.take()).toEqual([{ key: 'b', windowStart: 2, windowEnd: 7, count: 1, sum_amount: 7 }]);
    h.watermark(7);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 0, windowEnd: 8, count: 2, sum_amount: 3 }]);
    h.watermark(Infinity);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 20, windowEnd: 25, count: 1, sum_amount: 4 }]);
    expect(h.backend.keyCount()).toBe(0);
  });

  it('a record less than a gap from two sessions bridges them', () => {
    const h = harness({ assigner: 'session', gap: '5ms', aggregates: 'count, min(v), max(v)' });
    h.feed('a', 0, { v: 1 });
    h.feed('a', 8, { v: 3 });
    h.watermark(3);
    // [0, 5) and [8, 13) are apart; [4, 9) overlaps both.
    h.feed('a', 4, { v: 2 });
    h.feed('a', 12, { v: 4 });
    h.watermark(19);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 0, windowEnd: 17, count: 4, min_v: 1, max_v: 4 }]);
  });

  it('records exactly a gap apart are two sessions, whether or not the first fired in between', () => {
    for (const between of [4, 3]) {
      const h = harness({ assigner: 'session', gap: '5ms' });
      h.feed('a', 0);
      h.watermark(between);
      h.feed('a', 5);
      h.watermark(Infinity);
      expect(h.take()).toEqual([
        { key: 'a', windowStart: 0, windowEnd: 5, count: 1 },
        { key: 'a', windowStart: 5, windowEnd: 10, count: 1 },
      ]);
    }
  });

  it('keeps one timer per session in state as records grow and merge sessions', () => {
    const h = harness({ assigner: 'session', gap: '5ms' });
    const timersOf = (key: Key) =>
      [...h.backend.entriesIn('timers', keyGroupFor(key, 128))].filter(([k]) => k === key).map(([, t]) => [...(t as Map<number, 1>).keys()]);
    for (const ts of [0, 2, 4, 6, 8]) h.feed('a', ts);
    expect(timersOf('a')).toEqual([[12]]);
    h.feed('a', 16);
    expect(timersOf('a')).toEqual([[12, 20]]);
    // 12 bridges [0, 13) and [16, 21).
    h.feed('a', 12);
    expect(timersOf('a')).toEqual([[20]]);
    h.watermark(Infinity);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 0, windowEnd: 21, count: 7 }]);
    expect(timersOf('a')).toEqual([]);
  });

  it('fires the sessions of a key in time order when one watermark passes several', () => {
    const h = harness({ assigner: 'session', gap: '2ms' });
    h.feed('a', 30);
    h.feed('a', 10);
    h.feed('a', 20);
    h.watermark(Infinity);
    expect(h.take().map((r) => r.windowStart)).toEqual([10, 20, 30]);
  });
});

describe('window operator: allowed lateness', () => {
  it('updates and emits again a fired window for a record within the lateness, sends later ones to the late output', () => {
    const h = harness({ size: '10ms', allowedLateness: '5ms', aggregates: 'count, sum(amount)' });
    h.feed('a', 1, { amount: 1 });
    h.feed('a', 2, { amount: 1 });
    h.watermark(9);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 0, windowEnd: 10, count: 2, sum_amount: 2 }]);
    h.feed('a', 8, { amount: 10 });
    expect(h.take()).toEqual([{ key: 'a', windowStart: 0, windowEnd: 10, count: 3, sum_amount: 12 }]);
    h.watermark(13);
    expect(h.take()).toEqual([]);
    h.feed('a', 0, { amount: 100 });
    expect(h.take()).toEqual([{ key: 'a', windowStart: 0, windowEnd: 10, count: 4, sum_amount: 112 }]);
    // Past the lateness: the window is cleaned up, and what comes for it is late.
    h.watermark(14);
    expect(h.backend.keyCount()).toBe(0);
    h.feed('a', 6, { amount: 1000 });
    expect(h.take()).toEqual([]);
    expect(h.late).toEqual([
      {
        record: { amount: 1000 },
        reason: 'late: event time 1970-01-01T00:00:00.006Z is more than the allowed lateness (5 ms) behind the watermark 1970-01-01T00:00:00.014Z',
      },
    ]);
    expect(h.dead).toEqual([]);
  });

  it('emits at once a window that a record within the lateness makes when it is due already', () => {
    const h = harness({ size: '10ms', allowedLateness: '5ms' });
    h.feed('a', 15);
    h.watermark(10);
    h.feed('b', 3);
    expect(h.take()).toEqual([{ key: 'b', windowStart: 0, windowEnd: 10, count: 1 }]);
    h.feed('b', 4);
    expect(h.take()).toEqual([{ key: 'b', windowStart: 0, windowEnd: 10, count: 2 }]);
    h.watermark(14);
    expect(h.take()).toEqual([]);
    h.watermark(Infinity);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 10, windowEnd: 20, count: 1 }]);
    expect(h.backend.keyCount()).toBe(0);
  });

  it('emits and cleans up at once a window the watermark passed beyond its lateness in one step', () => {
    const h = harness({ size: '10ms', allowedLateness: '5ms' });
    h.feed('a', 1);
    h.watermark(100);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 0, windowEnd: 10, count: 1 }]);
    expect(h.backend.keyCount()).toBe(0);
  });

  it('with no lateness, takes a record behind the watermark while its window is open', () => {
    const h = harness({ size: '10ms' });
    h.feed('a', 7);
    h.watermark(8);
    h.feed('a', 5);
    h.watermark(9);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 0, windowEnd: 10, count: 2 }]);
    h.feed('a', 9);
    expect(h.late.map((l) => l.reason)).toEqual([
      'late: event time 1970-01-01T00:00:00.009Z is more than the allowed lateness (0 ms) behind the watermark 1970-01-01T00:00:00.009Z',
    ]);
  });

  it('sends late records to the dead-letter output when there is no late output', () => {
    const h = harness({ size: '10ms' }, undefined, { late: false });
    h.watermark(100);
    h.feed('a', 5);
    expect(h.dead.map((d) => d.reason)).toEqual([
      'late: event time 1970-01-01T00:00:00.005Z is more than the allowed lateness (0 ms) behind the watermark 1970-01-01T00:00:00.100Z',
    ]);
  });

  it('session: a record within the lateness grows a fired session and emits it again; one beyond it is late', () => {
    const h = harness({ assigner: 'session', gap: '5ms', allowedLateness: '10ms', aggregates: 'count' });
    h.feed('a', 0);
    h.watermark(4);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 0, windowEnd: 5, count: 1 }]);
    h.watermark(8);
    h.feed('a', 2);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 0, windowEnd: 7, count: 2 }]);
    // 3 grows it to [0, 8), which the watermark has passed as well: emitted at once.
    h.feed('a', 3);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 0, windowEnd: 8, count: 3 }]);
    h.watermark(17);
    expect(h.backend.keyCount()).toBe(0);
    h.feed('a', 1);
    expect(h.late.map((l) => l.record)).toEqual([{}]);
  });

  it('session: absorbing a fired session leaves the timer of another session due at the same time', () => {
    const h = harness({ assigner: 'session', gap: '10ms', allowedLateness: '20ms' });
    h.feed('a', 0);
    h.watermark(9);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 0, windowEnd: 10, count: 1 }]);
    // [20, 30) fires at 29, which is also when [0, 10) is cleaned up.
    h.feed('a', 20);
    // A late record merges with [0, 10): that session's cleanup timer goes, [20, 30)'s must stay.
    h.feed('a', 5);
    h.watermark(14);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 0, windowEnd: 15, count: 2 }]);
    h.watermark(29);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 20, windowEnd: 30, count: 1 }]);
    h.watermark(Infinity);
    expect(h.take()).toEqual([]);
    expect(h.backend.keyCount()).toBe(0);
  });
});

describe('window operator: processing time', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('assigns records by the wall clock and fires windows when the clock passes them', () => {
    vi.useFakeTimers();
    vi.setSystemTime(1000);
    const h = harness({ size: '10ms', time: 'processing', allowedLateness: '1s' });
    // No event time needed.
    h.feed('a', undefined);
    vi.setSystemTime(1005);
    h.feed('a', 3);
    h.feed('b', undefined);
    vi.setSystemTime(1012);
    h.feed('a', undefined);
    h.processingTime(1008);
    expect(h.take()).toEqual([]);
    // Watermarks do not fire processing-time windows.
    h.watermark(5000);
    expect(h.take()).toEqual([]);
    h.processingTime(1009);
    expect(byWindow(h.take())).toEqual([
      { key: 'a', windowStart: 1000, windowEnd: 1010, count: 2 },
      { key: 'b', windowStart: 1000, windowEnd: 1010, count: 1 },
    ]);
    // Allowed lateness is for event time: nothing is kept after firing.
    expect(h.backend.keyCount()).toBe(2);
    // The end of the input closes what is left.
    h.watermark(Infinity);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 1010, windowEnd: 1020, count: 1 }]);
    expect(h.backend.keyCount()).toBe(0);
    expect(h.late).toEqual([]);
  });

  it('session: a gap in the wall clock closes it', () => {
    vi.useFakeTimers();
    vi.setSystemTime(100);
    const h = harness({ assigner: 'session', gap: '10ms', time: 'processing' });
    h.feed('a', undefined);
    vi.setSystemTime(105);
    h.feed('a', undefined);
    h.processingTime(114);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 100, windowEnd: 115, count: 2 }]);
    vi.setSystemTime(200);
    h.feed('a', undefined);
    h.watermark(Infinity);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 200, windowEnd: 210, count: 1 }]);
  });

  it('event-time windows ignore the wall clock', () => {
    const h = harness({ size: '10ms' });
    h.feed('a', 5);
    h.processingTime(Number.MAX_SAFE_INTEGER);
    expect(h.take()).toEqual([]);
  });
});

describe('window operator: dead letters and settings', () => {
  it('dead-letters a record without an event time, and one whose aggregated field is not a number', () => {
    const h = harness({ size: '10ms', aggregates: 'count, sum(amount)' });
    h.feed('a', undefined, { amount: 1 });
    h.feed('a', 5, { amount: '1' });
    h.feed('a', 5, {});
    h.feed('a', 5, { amount: 2 });
    h.watermark(Infinity);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 0, windowEnd: 10, count: 1, sum_amount: 2 }]);
    expect(h.dead).toEqual([
      { record: { amount: 1 }, reason: 'window: the record has no event time (give its source a timestamp field, or use ingestion time)' },
      { record: { amount: '1' }, reason: "window: field 'amount' is not a number" },
      { record: {}, reason: "window: field 'amount' is not a number" },
    ]);
    expect(h.late).toEqual([]);
  });

  it('dead-letters a record of a session window whose field is not a number, leaving the session as it was', () => {
    const h = harness({ assigner: 'session', gap: '5ms', aggregates: 'max(v)' });
    h.feed('a', 0, { v: 1 });
    h.feed('a', 4, { v: null });
    h.watermark(Infinity);
    expect(h.take()).toEqual([{ key: 'a', windowStart: 0, windowEnd: 5, max_v: 1 }]);
    expect(h.dead.map((d) => d.reason)).toEqual(["window: field 'v' is not a number"]);
  });

  it('needs a keyed state backend and valid settings', () => {
    const create = (settings: Record<string, unknown>, backend?: KeyedStateBackend) =>
      createOperator({ id: 'w', type: 'window', parallelism: 1, settings }, { backend, deadLetter: () => {} });
    expect(() => create({})).toThrow('a keyed operator needs a keyed state backend');
    const b = new KeyedStateBackend(128);
    expect(() => create({ aggregates: 'median(x)' }, b)).toThrow("'median(x)' is not an aggregate");
    expect(() => create({ assigner: 'sliding', size: '10s' }, b)).toThrow('a sliding window needs a slide');
    expect(() => create({ assigner: 'sliding', size: '10s', slide: '20s' }, b)).toThrow('the slide may not be longer than the window');
    expect(() => create({ assigner: 'session' }, b)).toThrow('a session window needs a gap');
    expect(() => create({ size: '0ms' }, b)).toThrow('0ms is shorter than 1ms');
  });
});

describe('window operator: state', () => {
  it('continues from a snapshot restored into a fresh backend: window contents, fired windows and timers', () => {
    const before = harness({ size: '10ms', allowedLateness: '10ms', aggregates: 'count, sum(amount)' });
    before.feed('a', 1, { amount: 1 });
    before.feed('b', 15, { amount: 2 });
    before.watermark(9);
    expect(before.take()).toEqual([{ key: 'a', windowStart: 0, windowEnd: 10, count: 1, sum_amount: 1 }]);
    const snapshot = before.backend.snapshot(ALL_GROUPS);
    // The operator is made first, as the runtime does, so its timers are indexed as the groups are loaded.
    const after = harness({ size: '10ms', allowedLateness: '10ms', aggregates: 'count, sum(amount)' });
    for (const [kg, bytes] of snapshot) after.backend.restore(kg, bytes);
    after.time.watermark = 9;
    after.feed('a', 2, { amount: 10 });
    expect(after.take()).toEqual([{ key: 'a', windowStart: 0, windowEnd: 10, count: 2, sum_amount: 11 }]);
    after.watermark(19);
    expect(after.take()).toEqual([{ key: 'b', windowStart: 10, windowEnd: 20, count: 1, sum_amount: 2 }]);
    after.watermark(Infinity);
    expect(after.take()).toEqual([]);
    expect(after.backend.keyCount()).toBe(0);
  });
});

const AGGREGATES = 'count, sum(amount), min(amount), max(amount), avg(amount)';

/** The aggregates of a window's amounts, computed directly. */
function aggregate(key: Key, start: number, end: number, amounts: readonly number[]): Rec {
  const sum = amounts.reduce((s, x) => s + x, 0);
  return {
    key,
    windowStart: start,
    windowEnd: end,
    count: amounts.length,
    sum_amount: sum,
    min_amount: Math.min(...amounts),
    max_amount: Math.max(...amounts),
    avg_amount: sum / amounts.length,
  };
}

const idOf = (r: Rec) => `${String(r.key)}|${String(r.windowStart)}|${String(r.windowEnd)}`;
/** Results as a comparable multiset. */
const multiset = (rs: readonly Rec[]) => rs.map((r) => JSON.stringify(Object.entries(r).sort(([a], [b]) => a.localeCompare(b)))).sort();

/** An event as the oracle sees it: its key, time, amount and the watermark when it came. */
interface Event {
  key: Key;
  ts: number;
  amount: number;
  wm: number;
}

/**
 * What should come out, step by step, computed from the events without the operator's state or timers: for each
 * record, whether it is late and what is emitted at once; for each watermark, what is emitted then.
 */
interface Oracle {
  record(e: Event): { late: boolean; emitted: Rec[] };
  watermark(wm: number): Rec[];
  /** Every window's final result from all events at once. */
  final(events: readonly Event[]): Rec[];
  save(): unknown;
  load(saved: unknown): void;
}

/** Tumbling and sliding windows (a tumbling one slides by its size). */
class AlignedOracle implements Oracle {
  private windows = new Map<string, { key: Key; start: number; end: number; amounts: number[]; fired: boolean }>();
  constructor(
    private readonly size: number,
    private readonly slide: number,
    private readonly offset: number,
    private readonly lateness: number,
  ) {}

  /** Every window that holds `ts`, by trying every start. */
  private windowsOf(ts: number): [number, number][] {
    const out: [number, number][] = [];
    for (let start = ts - this.size + 1; start <= ts; start++)
      if ((((start - this.offset) % this.slide) + this.slide) % this.slide === 0) out.push([start, start + this.size]);
    return out;
  }

  private accepts(end: number, wm: number) {
    return end - 1 + this.lateness > wm;
  }

  record(e: Event) {
    const emitted: Rec[] = [];
    let late = true;
    for (const [start, end] of this.windowsOf(e.ts)) {
      if (!this.accepts(end, e.wm)) continue;
      late = false;
      const id = `${String(e.key)}|${start}`;
      let w = this.windows.get(id);
      if (!w) this.windows.set(id, (w = { key: e.key, start, end, amounts: [], fired: false }));
      w.amounts.push(e.amount);
      // Due already: fired now, or emitted again.
      if (end - 1 <= e.wm) {
        w.fired = true;
        emitted.push(aggregate(w.key, start, end, w.amounts));
      }
    }
    return { late, emitted };
  }

  watermark(wm: number) {
    const emitted: Rec[] = [];
    for (const w of this.windows.values())
      if (!w.fired && w.end - 1 <= wm) {
        w.fired = true;
        emitted.push(aggregate(w.key, w.start, w.end, w.amounts));
      }
    return emitted;
  }

  final(events: readonly Event[]) {
    const all = new Map<string, { key: Key; start: number; end: number; amounts: number[] }>();
    for (const e of events)
      for (const [start, end] of this.windowsOf(e.ts)) {
        if (!this.accepts(end, e.wm)) continue;
        const id = `${String(e.key)}|${start}`;
        if (!all.has(id)) all.set(id, { key: e.key, start, end, amounts: [] });
        all.get(id)!.amounts.push(e.amount);
      }
    return [...all.values()].map((w) => aggregate(w.key, w.start, w.end, w.amounts));
  }

  save() {
    return structuredClone(this.windows);
  }
  load(saved: unknown) {
    this.windows = structuredClone(saved) as typeof this.windows;
  }
}

/** Session windows of records that are never behind the watermark: a key's records at most `gap` apart share one. */
class SessionOracle implements Oracle {
  private events = new Map<Key, Event[]>();
  private fired = new Set<string>();
  constructor(private readonly gap: number) {}

  private sessions(events: readonly Event[]): Rec[] {
    const byKey = new Map<Key, Event[]>();
    for (const e of events) byKey.set(e.key, [...(byKey.get(e.key) ?? []), e]);
    const out: Rec[] = [];
    for (const [key, es] of byKey) {
      const sorted = [...es].sort((a, b) => a.ts - b.ts);
      const groups: Event[][] = [];
      for (const e of sorted) {
        const g = groups[groups.length - 1];
        if (g && e.ts <= g[g.length - 1]!.ts + this.gap) g.push(e);
        else groups.push([e]);
      }
      for (const g of groups)
        out.push(
          aggregate(
            key,
            g[0]!.ts,
            g[g.length - 1]!.ts + this.gap,
            g.map((e) => e.amount),
          ),
        );
    }
    return out;
  }

  record(e: Event) {
    this.events.set(e.key, [...(this.events.get(e.key) ?? []), e]);
    return { late: false, emitted: [] };
  }

  watermark(wm: number) {
    const due = this.sessions([...this.events.values()].flat()).filter((r) => (r.windowEnd as number) - 1 <= wm && !this.fired.has(idOf(r)));
    for (const r of due) this.fired.add(idOf(r));
    return due;
  }

  final(events: readonly Event[]) {
    return this.sessions(events);
  }

  save() {
    return structuredClone({ events: this.events, fired: this.fired });
  }
  load(saved: unknown) {
    ({ events: this.events, fired: this.fired } = structuredClone(saved) as { events: Map<Key, Event[]>; fired: Set<string> });
  }
}

type Step =
  | { op: 'record'; key: number; d: number; amount: number }
  | { op: 'late'; key: number; lag: number; amount: number }
  | { op: 'watermark' }
  | { op: 'checkpoint' }
  | { op: 'fail'; p: number }
  | { op: 'rescale'; p: number };

interface Stream {
  settings: Record<string, unknown>;
  lateness: number;
  /** Largest out-of-orderness of on-time records; watermarks are `max seen − bound − 1`. */
  bound: number;
  maxP: number;
  p0: number;
  keys: number;
  steps: Step[];
}

/** Steps of a stream; records behind the watermark (`late`) only where the oracle can tell what they do. */
const stepArb = (withLate: boolean): fc.Arbitrary<Step> =>
  fc.oneof(
    {
      weight: 14,
      arbitrary: fc.record({ op: fc.constant('record' as const), key: fc.nat(7), d: fc.nat(40), amount: fc.integer({ min: -50, max: 50 }) }),
    },
    ...(withLate
      ? [
          {
            weight: 2,
            arbitrary: fc.record({ op: fc.constant('late' as const), key: fc.nat(7), lag: fc.nat(45), amount: fc.integer({ min: -50, max: 50 }) }),
          },
        ]
      : []),
    { weight: 5, arbitrary: fc.constant({ op: 'watermark' as const }) },
    { weight: 1, arbitrary: fc.constant({ op: 'checkpoint' as const }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('fail' as const), p: fc.integer({ min: 1, max: 4 }) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('rescale' as const), p: fc.integer({ min: 1, max: 4 }) }) },
  );

const streamOf = (settings: fc.Arbitrary<{ settings: Record<string, unknown>; lateness: number }>, withLate: boolean): fc.Arbitrary<Stream> =>
  fc
    .record({
      s: settings,
      bound: fc.integer({ min: 0, max: 15 }),
      maxP: fc.constantFrom(4, 8, 16, 128),
      p0: fc.integer({ min: 1, max: 4 }),
      keys: fc.integer({ min: 1, max: 8 }),
      steps: fc.array(stepArb(withLate), { minLength: 1, maxLength: 150, size: 'large' }),
    })
    .map(({ s, ...rest }) => ({ ...s, ...rest }));

const lateness = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 30 }));
const alignedSettings = fc
  .record({
    sliding: fc.boolean(),
    size: fc.integer({ min: 1, max: 25 }),
    slide: fc.integer({ min: 1, max: 25 }),
    offset: fc.integer({ min: -30, max: 30 }),
    lateness,
  })
  .map(({ sliding, size, slide, offset, lateness }) => ({
    settings: {
      assigner: sliding ? 'sliding' : 'tumbling',
      size: `${size}ms`,
      ...(sliding && { slide: `${Math.min(slide, size)}ms` }),
      offset: `${offset}ms`,
      allowedLateness: `${lateness}ms`,
      aggregates: AGGREGATES,
    },
    lateness,
  }));
// An odd gap and even timestamps: no two records are exactly `gap` apart (see the scripted test of that case).
const sessionSettings = fc.record({ gap: fc.integer({ min: 0, max: 12 }), lateness }).map(({ gap, lateness }) => ({
  settings: { assigner: 'session', gap: `${2 * gap + 1}ms`, allowedLateness: `${lateness}ms`, aggregates: AGGREGATES },
  lateness,
}));

/**
 * Runs a stream through window operators over key-group ranges, as subtasks: records routed by key group, watermarks
 * to every subtask, checkpoints (a snapshot of every range), failures (back to the last checkpoint at another
 * parallelism: fresh backends restored by range, the output since the checkpoint rolled back as a transactional sink
 * does, and the steps since replayed) and live rescales (the key groups that change owner detached and loaded by the
 * new one). After every step what came out must be what the oracle says, at that step; at the end, every window's
 * last result must be its final result from all events, and nothing may be left in state. New subtasks start at the
 * watermark of the checkpoint or of the rescale: without it, a record that was late would be taken into a window
 * that was emitted and cleaned up already, and make a second, partial result for it.
 */
function check(stream: Stream, oracle: Oracle, opts: { session: boolean }) {
  const { maxP, bound } = stream;
  const keys = Array.from({ length: stream.keys }, (_, i) => `k${i}`);
  interface Owner {
    backend: KeyedStateBackend;
    op: StreamOperator;
    time: RecordTime;
    range: KeyGroupRange;
  }
  const dead: string[] = [];
  const late: number[] = [];
  const makeOwner = (i: number, p: number, watermark: number): Owner => {
    const backend = new KeyedStateBackend(maxP);
    const time: RecordTime = { timestamp: undefined, watermark };
    const op = createOperator(
      { id: 'w', type: 'window', parallelism: p, settings: stream.settings },
      { backend, time, deadLetter: (_r, reason) => dead.push(reason), late: (r) => late.push((r as Rec).id as number) },
    );
    return { backend, op, time, range: rangeFor(i, p, maxP) };
  };
  const holds = (r: KeyGroupRange, kg: number) => r.start <= kg && kg <= r.end;
  const output = (o: Owner, batch: Rec[]) => ({
    emit: (r: Rec) => {
      expect(o.time.timestamp).toBe((r.windowEnd as number) - 1);
      batch.push(r);
    },
  });

  // What the job has done so far, as of the last step (rolled back by a failure).
  let owners = Array.from({ length: stream.p0 }, (_, i) => makeOwner(i, stream.p0, NO_WATERMARK));
  let wm = NO_WATERMARK;
  let maxSeen = 0;
  let nextId = 0;
  const emitted: Rec[] = [];
  const events: Event[] = [];
  const expectedLate: number[] = [];
  let checkpoint = {
    at: -1,
    bytes: new Map<number, Buffer>(),
    emitted: 0,
    late: 0,
    expectedLate: 0,
    events: 0,
    wm,
    maxSeen,
    nextId,
    oracle: oracle.save(),
  };

  const ownerOf = (key: Key) => owners.find((o) => holds(o.range, keyGroupFor(key, maxP)))!;

  const run = (i: number, replaying: boolean) => {
    const s = stream.steps[i]!;
    if (s.op === 'record' || s.op === 'late') {
      const key = keys[s.key % keys.length]!;
      let ts: number;
      if (s.op === 'late' && wm > NO_WATERMARK) ts = wm - s.lag;
      else {
        ts = maxSeen - bound + ((s.op === 'record' ? s.d : s.lag) % (bound + 6));
        if (opts.session) ts += ((ts % 2) + 2) % 2;
        maxSeen = Math.max(maxSeen, ts);
      }
      const id = nextId++;
      const o = ownerOf(key);
      const batch: Rec[] = [];
      o.time.timestamp = ts;
      o.backend.setCurrentKey(key);
      o.op.process({ id, amount: s.amount }, key, output(o, batch));
      const event = { key, ts, amount: s.amount, wm };
      events.push(event);
      const expected = oracle.record(event);
      if (expected.late) expectedLate.push(id);
      expect(multiset(batch), `record ${id} of ${key} at ${ts}, watermark ${wm}`).toEqual(multiset(expected.emitted));
      emitted.push(...batch);
    } else if (s.op === 'watermark') {
      const next = maxSeen - bound - 1;
      if (next > wm) {
        wm = next;
        fireAll(wm);
      }
    } else if (s.op === 'checkpoint') {
      if (replaying) return;
      const bytes = new Map<number, Buffer>();
      for (const o of owners) for (const [kg, b] of o.backend.snapshot(keyGroupsOf(o.range))) bytes.set(kg, b);
      checkpoint = {
        at: i,
        bytes,
        emitted: emitted.length,
        late: late.length,
        expectedLate: expectedLate.length,
        events: events.length,
        wm,
        maxSeen,
        nextId,
        oracle: oracle.save(),
      };
    } else if (s.op === 'fail') {
      if (replaying) return;
      const c = checkpoint;
      emitted.length = c.emitted;
      late.length = c.late;
      expectedLate.length = c.expectedLate;
      events.length = c.events;
      ({ wm, maxSeen, nextId } = c);
      oracle.load(c.oracle);
      // New subtasks (made before their state is loaded, as the runtime does) restore their ranges of the checkpoint.
      owners = Array.from({ length: s.p }, (_, j) => makeOwner(j, s.p, c.wm));
      for (const o of owners) for (const kg of keyGroupsOf(o.range)) if (c.bytes.has(kg)) o.backend.restore(kg, c.bytes.get(kg)!);
      for (let j = c.at + 1; j < i; j++) run(j, true);
    } else {
      const next = Array.from({ length: s.p }, (_, j) =>
        j < owners.length ? { ...owners[j]!, range: rangeFor(j, s.p, maxP) } : makeOwner(j, s.p, wm),
      );
      for (let kg = 0; kg < maxP; kg++) {
        const from = owners.find((o) => holds(o.range, kg))!;
        const to = next.find((o) => holds(o.range, kg))!;
        if (from.backend === to.backend) continue;
        const bytes = from.backend.detach([kg])(kg);
        if (bytes) to.backend.restore(kg, bytes);
      }
      owners = next;
    }
  };

  const fireAll = (watermark: number) => {
    const batch: Rec[] = [];
    for (const o of owners) {
      const mine: Rec[] = [];
      o.op.onWatermark!(watermark, output(o, mine));
      // One watermark fires a key's windows in time order.
      for (const k of new Set(mine.map((r) => r.key))) {
        const ends = mine.filter((r) => r.key === k).map((r) => r.windowEnd as number);
        expect(ends).toEqual([...ends].sort((a, b) => a - b));
      }
      batch.push(...mine);
    }
    expect(multiset(batch), `watermark ${watermark}`).toEqual(multiset(oracle.watermark(watermark)));
    emitted.push(...batch);
  };

  for (let i = 0; i < stream.steps.length; i++) run(i, false);
  fireAll(Infinity);

  expect(dead).toEqual([]);
  expect([...late].sort((a, b) => a - b)).toEqual([...expectedLate].sort((a, b) => a - b));
  for (const o of owners) expect(o.backend.keyCount()).toBe(0);
  // Each window's last result is its final result, from all events at once: no record lost or counted twice.
  const last = new Map<string, Rec>();
  for (const r of emitted) last.set(opts.session ? idOf(r) : `${String(r.key)}|${String(r.windowStart)}`, r);
  expect(multiset([...last.values()])).toEqual(multiset(oracle.final(events)));
  if (stream.lateness === 0 || opts.session) {
    // Nothing is emitted twice for one window, and a key's results come in time order.
    expect(emitted.length).toBe(last.size);
    for (const k of keys) {
      const ends = emitted.filter((r) => r.key === k).map((r) => r.windowEnd as number);
      expect(ends).toEqual([...ends].sort((a, b) => a - b));
    }
  }
}

describe('window operator: properties', () => {
  beforeAll(() => console.log(`window operator properties: seed ${SEED}, ${RUNS} runs (replay with KEYFLOW_PROPERTY_SEED=${SEED})`));

  it('tumbling and sliding: through checkpoints, failures and live rescales, every window comes out when due, exactly as the events say', () => {
    fc.assert(
      fc.property(streamOf(alignedSettings, true), (stream) => {
        const st = stream.settings;
        const ms = (k: string) => parseDuration(st[k] as string)!;
        const size = ms('size');
        check(stream, new AlignedOracle(size, st.slide ? ms('slide') : size, ms('offset'), stream.lateness), { session: false });
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it('session: through checkpoints, failures and live rescales, every session comes out once, when due, exactly as the events say', () => {
    fc.assert(
      fc.property(streamOf(sessionSettings, false), (stream) => {
        check(stream, new SessionOracle(parseDuration(stream.settings.gap as string)!), { session: true });
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });
});
