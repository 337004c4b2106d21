import type { Rec } from './codec.ts';
import { getField } from './fields.ts';

/** A time window `[start, end)` in ms. */
export interface Window {
  start: number;
  end: number;
}

/** The last timestamp a window holds: it fires once the watermark reaches it. */
export const maxTimestamp = (w: Window) => w.end - 1;

/** The start of the window of `size` (shifted by `offset`) that holds `ts`: Flink's `TimeWindow.getWindowStartWithOffset`. */
export function windowStart(ts: number, size: number, offset = 0): number {
  return ts - ((((ts - offset) % size) + size) % size);
}

/** The tumbling window of `size` that holds `ts`. */
export function tumblingWindow(ts: number, size: number, offset = 0): Window {
  const start = windowStart(ts, size, offset);
  return { start, end: start + size };
}

/** Every sliding window of `size`, starting every `slide`, that holds `ts`, latest first. */
export function slidingWindows(ts: number, size: number, slide: number, offset = 0): Window[] {
  const out: Window[] = [];
  for (let start = windowStart(ts, slide, offset); start > ts - size; start -= slide) out.push({ start, end: start + size });
  return out;
}

/**
 * Whether two windows overlap, so that sessions merge: records less than `gap` apart share a session, records `gap`
 * apart or more do not. (Flink's `TimeWindow.intersects` also merges windows that only touch; then whether two
 * records exactly `gap` apart share a session depends on whether the first session fired before the second record
 * came, which depends on timing. Strict overlap gives the same sessions whatever the timing.)
 */
export function intersects(a: Window, b: Window): boolean {
  return a.start < b.end && b.start < a.end;
}

/**
 * A new session `[ts, ts + gap)` against a key's sessions: the one session it becomes after merging with every
 * session it touches, and those it absorbed.
 */
export function mergeSession(sessions: Iterable<Window>, ts: number, gap: number): { merged: Window; absorbed: Window[] } {
  const merged = { start: ts, end: ts + gap };
  const absorbed: Window[] = [];
  // Absorbing one session can make the merged one reach another: repeat until nothing more overlaps it.
  let rest = [...sessions];
  for (let changed = true; changed;) {
    changed = false;
    const keep: Window[] = [];
    for (const s of rest) {
      if (intersects(s, merged)) {
        merged.start = Math.min(merged.start, s.start);
        merged.end = Math.max(merged.end, s.end);
        absorbed.push(s);
        changed = true;
      } else keep.push(s);
    }
    rest = keep;
  }
  return { merged, absorbed };
}

/**
 * Whether a window is past its allowed lateness at watermark `wm`: it fired and was cleaned up, so what comes for it
 * now is late (Flink's `isWindowLate`).
 */
export function isWindowLate(w: Window, allowedLateness: number, wm: number): boolean {
  return maxTimestamp(w) + allowedLateness <= wm;
}

export type AggregateFn = 'count' | 'sum' | 'min' | 'max' | 'avg' | 'maxBy' | 'minBy';

/** One aggregate of a window: its function, the field it reads (none for count) and the output field it fills. */
export interface Aggregate {
  fn: AggregateFn;
  field?: string;
  name: string;
}

const AGGREGATE = /^(?:(count)(?:\(\s*\))?|(sum|min|max|avg|maxBy|minBy)\(\s*([A-Za-z_][\w.]*)\s*\))(?:\s+as\s+([A-Za-z_]\w*))?$/;
const AGGREGATES_HELP = 'count, sum(f), min(f), max(f), avg(f), maxBy(f) or minBy(f), each optionally followed by "as name"';

/**
 * Parses the aggregates a window computes, as typed: `count, sum(amount), avg(amount), maxBy(price) as top`. Output
 * fields are `count`, `sum_amount`, `avg_amount`… unless named with `as`; an error names the first part that is not
 * an aggregate. `maxBy(f)` and `minBy(f)` give the whole record with the greatest (least) `f`.
 */
export function parseAggregates(text: string): { ok: true; aggregates: Aggregate[] } | { ok: false; message: string } {
  const parts = text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  if (parts.length === 0) return { ok: false, message: `at least one aggregate: ${AGGREGATES_HELP}` };
  const aggregates: Aggregate[] = [];
  for (const p of parts) {
    const m = AGGREGATE.exec(p);
    if (!m) return { ok: false, message: `'${p}' is not an aggregate: ${AGGREGATES_HELP}` };
    const agg: Aggregate = m[1]
      ? { fn: 'count', name: m[4] ?? 'count' }
      : { fn: m[2] as AggregateFn, field: m[3]!, name: m[4] ?? `${m[2]}_${m[3]!.replace(/\./g, '_')}` };
    if (aggregates.some((a) => a.name === agg.name)) return { ok: false, message: `'${p}': an output named '${agg.name}' is listed already` };
    aggregates.push(agg);
  }
  return { ok: true, aggregates };
}

/** A window accumulator: numbers, and for maxBy/minBy the record that holds the best value so far. */
export type Accumulator = unknown[];

/**
 * Whether `rec` (whose field is `v`) replaces the record held (whose field is `best`) for maxBy (`sign` 1) or minBy
 * (−1). Ties go to the record whose JSON sorts first, so the result does not depend on the order records came in
 * (which differs between runs, replays and parallelisms).
 */
function beats(sign: number, v: number, rec: unknown, best: number, held: unknown): boolean {
  if (held === undefined || held === null) return true;
  if (v !== best) return sign * (v - best) > 0;
  return JSON.stringify(rec) < JSON.stringify(held);
}

/**
 * Window accumulators as flat arrays (small in state, cheap to copy): one slot per aggregate, two for avg (sum and
 * count) and for maxBy/minBy (best value and its record). Add, merge (sessions) and read out.
 */
export class Aggregator {
  /** Each aggregate's first slot. */
  private readonly slots: number[] = [];
  readonly width: number;

  constructor(
    readonly aggregates: readonly Aggregate[],
    /** Who names a field that is not a number, in the reason a record is dead-lettered with. */
    private readonly label = 'window',
  ) {
    let w = 0;
    for (const a of aggregates) {
      this.slots.push(w);
      w += a.fn === 'avg' || a.fn === 'maxBy' || a.fn === 'minBy' ? 2 : 1;
    }
    this.width = w;
  }

  /** The fields of its output values, in order. */
  get fields(): string[] {
    return this.aggregates.map((a) => a.name);
  }

  create(): Accumulator {
    const acc = new Array<unknown>(this.width).fill(0);
    this.aggregates.forEach((a, i) => {
      const s = this.slots[i]!;
      if (a.fn === 'min' || a.fn === 'minBy') acc[s] = Infinity;
      if (a.fn === 'max' || a.fn === 'maxBy') acc[s] = -Infinity;
      if (a.fn === 'maxBy' || a.fn === 'minBy') acc[s + 1] = null;
    });
    return acc;
  }

  /** The numbers a record brings to each aggregate, or why it cannot be aggregated (a field that is not a number). */
  values(rec: Rec): number[] | string {
    const out: number[] = [];
    for (const a of this.aggregates) {
      if (a.fn === 'count') {
        out.push(1);
        continue;
      }
      const v = getField(rec, a.field!);
      if (typeof v !== 'number' || !Number.isFinite(v)) return `${this.label}: field '${a.field}' is not a number`;
      out.push(v);
    }
    return out;
  }

  /** Adds one record's values (from `values`) into `acc`, in place; maxBy and minBy keep `rec` itself. */
  add(acc: Accumulator, values: readonly number[], rec: Rec): void {
    this.aggregates.forEach((a, i) => {
      const s = this.slots[i]!;
      const v = values[i]!;
      const n = acc[s] as number;
      if (a.fn === 'min') acc[s] = Math.min(n, v);
      else if (a.fn === 'max') acc[s] = Math.max(n, v);
      else if (a.fn === 'maxBy' || a.fn === 'minBy') {
        if (beats(a.fn === 'maxBy' ? 1 : -1, v, rec, n, acc[s + 1])) {
          acc[s] = v;
          acc[s + 1] = rec;
        }
      } else if (a.fn === 'avg') {
        acc[s] = n + v;
        acc[s + 1] = (acc[s + 1] as number) + 1;
      } else acc[s] = n + v;
    });
  }

  /** Whether every aggregate can take a record back out (count, sum, avg); min, max, maxBy and minBy cannot. */
  get retractable(): boolean {
    return this.aggregates.every((a) => a.fn === 'count' || a.fn === 'sum' || a.fn === 'avg');
  }

  /** Takes one record's values (from `values`) back out of `acc`, in place: only when `retractable`. */
  retract(acc: Accumulator, values: readonly number[]): void {
    this.aggregates.forEach((a, i) => {
      const s = this.slots[i]!;
      acc[s] = (acc[s] as number) - values[i]!;
      if (a.fn === 'avg') acc[s + 1] = (acc[s + 1] as number) - 1;
    });
  }

  /** Merges `b` into `a`, in place (two sessions become one). */
  merge(a: Accumulator, b: Accumulator): void {
    this.aggregates.forEach((agg, i) => {
      const s = this.slots[i]!;
      const [x, y] = [a[s] as number, b[s] as number];
      if (agg.fn === 'min') a[s] = Math.min(x, y);
      else if (agg.fn === 'max') a[s] = Math.max(x, y);
      else if (agg.fn === 'maxBy' || agg.fn === 'minBy') {
        if (b[s + 1] !== null && beats(agg.fn === 'maxBy' ? 1 : -1, y, b[s + 1], x, a[s + 1])) {
          a[s] = y;
          a[s + 1] = b[s + 1];
        }
      } else {
        a[s] = x + y;
        if (agg.fn === 'avg') a[s + 1] = (a[s + 1] as number) + (b[s + 1] as number);
      }
    });
  }

  /** The output fields of an accumulator. */
  result(acc: Accumulator): Rec {
    const out: Rec = {};
    this.aggregates.forEach((a, i) => {
      const s = this.slots[i]!;
      out[a.name] = a.fn === 'avg' ? (acc[s] as number) / (acc[s + 1] as number) : a.fn === 'maxBy' || a.fn === 'minBy' ? acc[s + 1] : acc[s];
    });
    return out;
  }
}
