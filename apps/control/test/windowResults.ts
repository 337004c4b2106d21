import { EventGenerator, type GraphInput } from '@keyflow/core';
import { expect } from 'vitest';
import { tableCounts, type GeneratorSettings } from './harness.ts';

/** A bounded generator's settings with event time, as the window tests use them. */
export type TimedGenerator = Omit<GeneratorSettings, 'outOfOrderness' | 'lateBy'> & {
  total: number;
  msPerEvent: number;
  outOfOrderness: string;
  watermarkDelay: string;
  lateEvery?: number;
  lateBy?: string;
};

/** Milliseconds of a test's duration text (`2s`, `500ms`): the tests' own reading, not the engine's. */
const ms = (text: string) => (text.endsWith('ms') ? Number(text.slice(0, -2)) : Number(text.slice(0, -1)) * 1000);

/**
 * Every window's count, computed from the generator's events without the engine: per user, per tumbling window of
 * `size` ms (plain floor division), or per session (a new one when an event comes `gap` or more after the last).
 * Keyed as the sink keys them: `user|windowStart`. The generator's late events (`lateEvery`, `lateBy` far beyond
 * any window and the watermark delay) count in no window: they go to the late output.
 */
export function expectedWindows(settings: TimedGenerator, window: { size: number } | { gap: number }): Map<string, number> {
  const gen = generatorOf(settings);
  const out = new Map<string, number>();
  if ('size' in window) {
    for (let i = 0; i < settings.total; i++) {
      if (gen.isLate(i)) continue;
      const e = gen.eventAt(i);
      const k = `${e.user}|${Math.floor(e.ts / window.size) * window.size}`;
      out.set(k, (out.get(k) ?? 0) + 1);
    }
    return out;
  }
  const times = new Map<string, number[]>();
  for (let i = 0; i < settings.total; i++) {
    if (gen.isLate(i)) continue;
    const e = gen.eventAt(i);
    let t = times.get(e.user);
    if (!t) times.set(e.user, (t = []));
    t.push(e.ts);
  }
  for (const [user, ts] of times) {
    ts.sort((a, b) => a - b);
    let start = ts[0]!;
    let last = ts[0]!;
    let n = 0;
    for (const t of ts) {
      if (t >= last + window.gap) {
        out.set(`${user}|${start}`, n);
        start = t;
        n = 0;
      }
      last = t;
      n++;
    }
    out.set(`${user}|${start}`, n);
  }
  return out;
}

/** The generator of the tests' settings, as the engine reads them. */
function generatorOf(settings: TimedGenerator): EventGenerator {
  const { lateBy, outOfOrderness, ...rest } = settings;
  return new EventGenerator({ zipfExponent: 1, ...rest, outOfOrderness: ms(outOfOrderness), ...(lateBy !== undefined && { lateBy: ms(lateBy) }) });
}

/** How many of the generator's events are late ones. */
export function expectedLate(settings: TimedGenerator): number {
  const gen = generatorOf(settings);
  let n = 0;
  for (let i = 0; i < settings.total; i++) if (gen.isLate(i)) n++;
  return n;
}

/**
 * generator → keyBy(user) → a tumbling and a session window side by side, each → (chained) postgres keyed by
 * (key, windowStart) with the window's count as the value. Tables `<prefix>_tumble` and `<prefix>_session`.
 */
export function windowPipeline(
  prefix: string,
  settings: TimedGenerator,
  windows: { tumble: Record<string, unknown>; session: Record<string, unknown> },
  parallelism = 2,
): GraphInput {
  const sink = (table: string) => ({ table, keyField: 'key, windowStart', valueField: 'count' });
  return {
    vertices: [
      { id: 'events', type: 'generator', parallelism: 2, settings },
      { id: 'tumble', type: 'window', parallelism, settings: { aggregates: 'count', ...windows.tumble } },
      { id: 'tumbleSink', type: 'postgres', parallelism, settings: sink(`${prefix}_tumble`) },
      { id: 'session', type: 'window', parallelism, settings: { aggregates: 'count', assigner: 'session', ...windows.session } },
      { id: 'sessionSink', type: 'postgres', parallelism, settings: sink(`${prefix}_session`) },
    ],
    edges: [
      { from: 'events', to: 'tumble', partitioning: 'hash', key: 'user' },
      { from: 'tumble', to: 'tumbleSink', partitioning: 'forward' },
      { from: 'events', to: 'session', partitioning: 'hash', key: 'user' },
      { from: 'session', to: 'sessionSink', partitioning: 'forward' },
    ],
  };
}

/** Every window in the table equals the independent computation, and no window is missing or extra. */
export async function expectExactWindows(table: string, expected: Map<string, number>): Promise<void> {
  const actual = await tableCounts(table);
  const wrong = [...expected].filter(([k, n]) => actual.get(k) !== n).map(([window, n]) => `${window}: ${actual.get(window)} instead of ${n}`);
  const extra = [...actual.keys()].filter((k) => !expected.has(k));
  expect(wrong.slice(0, 10), `${wrong.length} of ${expected.size} windows are wrong`).toEqual([]);
  expect(extra.slice(0, 10), `${extra.length} windows that should not exist`).toEqual([]);
}
