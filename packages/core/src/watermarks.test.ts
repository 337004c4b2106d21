import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { END_WATERMARK, NO_WATERMARK, SplitWatermarks, WatermarkValve } from './watermarks.ts';

/** KEYFLOW_PROPERTY_RUNS=n runs more cases (default 300); KEYFLOW_PROPERTY_SEED=s replays a run. */
const RUNS = Number(process.env.KEYFLOW_PROPERTY_RUNS ?? 300);
const SEED = Number(process.env.KEYFLOW_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));
beforeAll(() => console.log(`watermark properties: seed ${SEED}, ${RUNS} runs (replay with KEYFLOW_PROPERTY_SEED=${SEED})`));

describe('SplitWatermarks', () => {
  it('is the largest event time seen minus the bound minus 1, the minimum over splits', () => {
    const w = new SplitWatermarks(100, undefined);
    w.assign([0, 1], 0);
    expect(w.current(0)).toBe(NO_WATERMARK);
    w.observe(0, 1000, 0);
    // Split 1 has seen nothing yet: it holds everything back.
    expect(w.current(0)).toBe(NO_WATERMARK);
    w.observe(1, 500, 0);
    expect(w.current(0)).toBe(399);
    w.observe(1, 450, 0);
    expect(w.current(0)).toBe(399);
    w.observe(1, 2000, 0);
    expect(w.current(0)).toBe(899);
    expect([w.maxTs(0), w.maxTs(1)]).toEqual([1000, 2000]);
  });

  it.each<[number, number, number]>([
    [0, 1000, 999],
    [1, 1000, 998],
    [5000, 1000, -4001],
    [0, -50, -51],
  ])('with bound %i, event time %i gives the watermark %i', (bound, ts, wm) => {
    const w = new SplitWatermarks(bound, undefined);
    w.assign([7], 0);
    w.observe(7, ts, 0);
    expect(w.current(0)).toBe(wm);
  });

  it('leaves exhausted splits out, and is the end watermark once all are', () => {
    const w = new SplitWatermarks(10, undefined);
    w.assign([0, 1], 0);
    w.observe(0, 100, 0);
    w.observe(1, 50, 0);
    expect(w.current(0)).toBe(39);
    w.end(1);
    expect(w.current(0)).toBe(89);
    w.end(0);
    expect(w.current(0)).toBe(END_WATERMARK);
    // A split that ended before any data holds nothing back either.
    const v = new SplitWatermarks(10, undefined);
    v.assign([3], 0);
    v.end(3);
    expect(v.current(0)).toBe(END_WATERMARK);
  });

  it('leaves splits without data for the idle timeout out, and is idle when every split left is', () => {
    const w = new SplitWatermarks(100, 1000);
    w.assign([0, 1], 0);
    w.observe(0, 5000, 500);
    expect(w.current(999)).toBe(NO_WATERMARK);
    expect(w.isIdle(1, 999)).toBe(false);
    // Split 1 had nothing since it was assigned at 0.
    expect(w.isIdle(1, 1000)).toBe(true);
    expect(w.current(1000)).toBe(4899);
    expect(w.current(1499)).toBe(4899);
    expect(w.current(1500)).toBe('idle');
    // Data on split 1 makes it active again: it counts from then on, even below what was already given out.
    w.observe(1, 3000, 1600);
    expect(w.isIdle(1, 1600)).toBe(false);
    expect(w.current(1600)).toBe(2899);
    expect(w.current(2500)).toBe(2899);
    expect(w.current(2600)).toBe('idle');
  });

  it('is idle when the splits left are idle and the others exhausted', () => {
    const w = new SplitWatermarks(0, 100);
    w.assign([0, 1], 0);
    w.observe(0, 10, 0);
    w.end(0);
    expect(w.current(50)).toBe(NO_WATERMARK);
    expect(w.current(100)).toBe('idle');
    // An exhausted split is never idle: it is done.
    expect(w.isIdle(0, 1_000_000)).toBe(false);
  });

  it('is idle, not at the end, while it reads no split: a rescale may give it one', () => {
    // With more source subtasks than splits some read none (rangeFor(2, 3, 2) is empty), and get one at another
    // parallelism (rangeFor(2, 4, 2) is split 1): a subtask that had given out the end watermark could not go back.
    const w = new SplitWatermarks(10, undefined);
    w.assign([], 0);
    expect(w.current(0)).toBe('idle');
    w.assign([1], 5);
    expect(w.current(5)).toBe(NO_WATERMARK);
    w.observe(1, 100, 5);
    expect(w.current(5)).toBe(89);
    w.assign([], 10);
    expect(w.current(10)).toBe('idle');
  });

  it('never counts a split idle without an idle timeout', () => {
    const w = new SplitWatermarks(0, undefined);
    w.assign([0], 0);
    w.observe(0, 10, 0);
    expect(w.isIdle(0, Number.MAX_SAFE_INTEGER)).toBe(false);
    expect(w.current(Number.MAX_SAFE_INTEGER)).toBe(9);
  });

  it('keeps the clocks of splits it keeps on assign, starts new ones unknown and drops the rest', () => {
    const w = new SplitWatermarks(0, 1000);
    w.assign([0, 1], 0);
    w.observe(0, 100, 0);
    w.observe(1, 200, 0);
    w.assign([1, 2], 900);
    expect([w.maxTs(0), w.maxTs(1), w.maxTs(2)]).toEqual([NO_WATERMARK, 200, NO_WATERMARK]);
    // Split 1 keeps its activity clock (idle at 1000), split 2 starts active at 900.
    expect(w.isIdle(1, 1000)).toBe(true);
    expect(w.isIdle(2, 1000)).toBe(false);
    expect(w.current(1000)).toBe(NO_WATERMARK);
    w.observe(2, 500, 1000);
    expect(w.current(1000)).toBe(499);
  });

  it('loads a split as a checkpoint or handover restores it, unknown when it had no data', () => {
    const w = new SplitWatermarks(10, undefined);
    w.load(4, 1000, 0);
    w.load(5, undefined, 0);
    expect([w.maxTs(4), w.maxTs(5), w.maxTs(6)]).toEqual([1000, NO_WATERMARK, NO_WATERMARK]);
    expect(w.current(0)).toBe(NO_WATERMARK);
    w.observe(5, 2000, 0);
    expect(w.current(0)).toBe(989);
  });

  it('ignores data and ends of splits it does not read', () => {
    const w = new SplitWatermarks(0, undefined);
    w.assign([0], 0);
    w.observe(0, 10, 0);
    w.observe(9, 1_000_000, 0);
    w.end(9);
    expect(w.maxTs(9)).toBe(NO_WATERMARK);
    expect(w.current(0)).toBe(9);
    expect(w.isIdle(9, 0)).toBe(false);
  });

  it('property: within the bound, no record is at or behind a watermark given out before it, and the watermark never goes back', () => {
    type Step = { kind: 'observe'; split: number; back: number; ahead: number } | { kind: 'end'; split: number };
    const step: fc.Arbitrary<Step> = fc.oneof(
      { weight: 8, arbitrary: fc.record({ kind: fc.constant('observe' as const), split: fc.nat(3), back: fc.nat(100), ahead: fc.nat(60) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('end' as const), split: fc.nat(3) }) },
    );
    fc.assert(
      fc.property(fc.nat(100), fc.integer({ min: 1, max: 4 }), fc.array(step, { maxLength: 80, size: 'large' }), (bound, n, steps) => {
        const w = new SplitWatermarks(bound, undefined);
        const splits = Array.from({ length: n }, (_, i) => i);
        w.assign(splits, 0);
        const ended = new Set<number>();
        let last = w.current(0) as number;
        for (const s of steps) {
          if (s.split >= n || ended.has(s.split)) continue;
          if (s.kind === 'end') {
            w.end(s.split);
            ended.add(s.split);
          } else {
            const max = w.maxTs(s.split);
            // Bounded out-of-orderness: at most `bound` behind the split's largest event time so far.
            const ts = max === NO_WATERMARK ? s.ahead : max - Math.min(s.back, bound) + s.ahead;
            expect(ts).toBeGreaterThan(last);
            w.observe(s.split, ts, 0);
          }
          const now = w.current(0) as number;
          expect(now).toBeGreaterThanOrEqual(last);
          last = now;
        }
        expect(last === END_WATERMARK).toBe(ended.size === n);
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });
});

describe('WatermarkValve', () => {
  it('starts at a floor (a restored or handed-over watermark): nothing below it goes on, and it rises once every channel passed it', () => {
    const v = new WatermarkValve(['a', 'b']);
    v.floor(100);
    expect(v.current).toBe(100);
    expect(v.onWatermark('a', 50)).toBeUndefined();
    expect(v.onWatermark('b', 150)).toBeUndefined();
    expect(v.onWatermark('a', 120)).toBe(120);
    // A floor below the output changes nothing.
    v.floor(10);
    expect(v.current).toBe(120);
  });

  it('forwards the minimum over its channels, only when it rises', () => {
    const v = new WatermarkValve(['a', 'b']);
    expect(v.current).toBe(NO_WATERMARK);
    expect(v.onWatermark('a', 10)).toBeUndefined();
    expect(v.onWatermark('b', 5)).toBe(5);
    expect(v.onWatermark('b', 5)).toBeUndefined();
    expect(v.onWatermark('b', 20)).toBe(10);
    // A channel's watermark never goes back.
    expect(v.onWatermark('a', 8)).toBeUndefined();
    expect(v.inputs.get('a')!.watermark).toBe(10);
    expect(v.onWatermark('a', 15)).toBe(15);
    expect(v.onWatermark('a', 30)).toBe(20);
    expect(v.current).toBe(20);
  });

  it('leaves an idle channel out; back, it counts again once it caught up with the output', () => {
    const v = new WatermarkValve(['a', 'b']);
    v.onWatermark('a', 10);
    v.onWatermark('b', 20);
    expect(v.current).toBe(10);
    expect(v.onIdle('a')).toBe(20);
    expect(v.inputs.get('a')).toEqual({ watermark: 10, idle: true, aligned: false });
    expect(v.idle).toBe(false);
    // Saying idle twice changes nothing.
    expect(v.onIdle('a')).toBeUndefined();
    expect(v.onWatermark('b', 25)).toBe(25);
    // A watermark makes 'a' active, but it is behind the output: it does not count (the output never goes back).
    expect(v.onWatermark('a', 15)).toBeUndefined();
    expect(v.inputs.get('a')).toEqual({ watermark: 15, idle: false, aligned: false });
    expect(v.onWatermark('b', 40)).toBe(40);
    expect(v.onWatermark('a', 39)).toBeUndefined();
    // Caught up: it counts, and holds the output back from here on.
    expect(v.onWatermark('a', 45)).toBeUndefined();
    expect(v.inputs.get('a')!.aligned).toBe(true);
    expect(v.onWatermark('b', 60)).toBe(45);
    expect(v.onWatermark('a', 70)).toBe(60);
  });

  it('counts a channel that says it is active again at once when its watermark is not behind the output', () => {
    const v = new WatermarkValve(['a', 'b']);
    v.onWatermark('a', 30);
    v.onWatermark('b', 20);
    expect(v.onIdle('a')).toBeUndefined();
    expect(v.current).toBe(20);
    v.onActive('a');
    expect(v.inputs.get('a')).toEqual({ watermark: 30, idle: false, aligned: true });
    expect(v.onWatermark('b', 50)).toBe(30);
    // Behind the output when it comes back: it waits until it caught up.
    v.onIdle('a');
    expect(v.current).toBe(50);
    v.onActive('a');
    expect(v.inputs.get('a')).toEqual({ watermark: 30, idle: false, aligned: false });
    expect(v.onWatermark('b', 60)).toBe(60);
    // onActive on an active channel changes nothing.
    v.onActive('b');
    expect(v.inputs.get('b')).toEqual({ watermark: 60, idle: false, aligned: true });
  });

  it('lets the output rise to the highest watermark when every channel is idle, and is idle then', () => {
    const v = new WatermarkValve(['a', 'b']);
    v.onWatermark('a', 10);
    v.onWatermark('b', 20);
    expect(v.onIdle('b')).toBeUndefined();
    expect(v.idle).toBe(false);
    expect(v.onIdle('a')).toBe(20);
    expect(v.idle).toBe(true);
    // Data on a channel behind the output: not idle any more, but the output stays.
    expect(v.onWatermark('a', 15)).toBeUndefined();
    expect(v.idle).toBe(false);
    expect(v.current).toBe(20);
    expect(v.onWatermark('a', 25)).toBe(25);
  });

  it('does not move when every channel goes idle at or below the output', () => {
    const v = new WatermarkValve(['a', 'b']);
    v.onWatermark('a', 10);
    v.onWatermark('b', 10);
    v.onIdle('a');
    expect(v.onIdle('b')).toBeUndefined();
    expect(v.idle).toBe(true);
    expect(v.current).toBe(10);
    // Idle from the start: nothing to rise to.
    const w = new WatermarkValve(['a']);
    expect(w.onIdle('a')).toBeUndefined();
    expect(w.current).toBe(NO_WATERMARK);
    expect(w.idle).toBe(true);
  });

  it('counts a channel that joins before any watermark at once, and one that joins later once it caught up', () => {
    const v = new WatermarkValve([]);
    expect(v.idle).toBe(false);
    v.add('a');
    expect(v.onWatermark('a', 10)).toBe(10);
    v.add('b');
    expect(v.inputs.get('b')).toEqual({ watermark: NO_WATERMARK, idle: false, aligned: false });
    expect(v.onWatermark('b', 5)).toBeUndefined();
    expect(v.onWatermark('a', 20)).toBe(20);
    expect(v.onWatermark('b', 25)).toBeUndefined();
    expect(v.inputs.get('b')!.aligned).toBe(true);
    expect(v.onWatermark('a', 30)).toBe(25);
    // Adding a channel it has already changes nothing.
    v.add('a');
    expect(v.inputs.get('a')).toEqual({ watermark: 30, idle: false, aligned: true });

    const w = new WatermarkValve(['a']);
    w.add('b');
    expect(w.onWatermark('a', 10)).toBeUndefined();
    expect(w.onWatermark('b', 5)).toBe(5);
  });

  it('rises when the channel that held it back leaves; removing the last one ends it', () => {
    const v = new WatermarkValve(['a', 'b', 'c']);
    v.onWatermark('a', 10);
    v.onWatermark('b', 20);
    v.onWatermark('c', 30);
    expect(v.current).toBe(10);
    expect(v.remove('b')).toBeUndefined();
    expect(v.remove('a')).toBe(30);
    expect(v.remove('a')).toBeUndefined();
    expect(v.remove('c')).toBe(END_WATERMARK);
    expect(v.current).toBe(END_WATERMARK);
    expect(v.idle).toBe(false);
  });

  it('lets a channel at the end watermark hold nothing back, and ends when every channel has', () => {
    const v = new WatermarkValve(['a', 'b']);
    v.onWatermark('a', 10);
    expect(v.onWatermark('b', END_WATERMARK)).toBe(10);
    expect(v.onWatermark('a', 50)).toBe(50);
    expect(v.onWatermark('a', END_WATERMARK)).toBe(END_WATERMARK);
  });

  it('ignores markers of channels it does not have', () => {
    const v = new WatermarkValve(['a']);
    expect(v.onWatermark('x', 10)).toBeUndefined();
    expect(v.onIdle('x')).toBeUndefined();
    v.onActive('x');
    expect([...v.inputs.keys()]).toEqual(['a']);
    expect(v.current).toBe(NO_WATERMARK);
  });

  it('does not move while no active channel counts', () => {
    const v = new WatermarkValve(['a', 'b']);
    v.onWatermark('a', 10);
    v.onWatermark('b', 10);
    v.onIdle('a');
    expect(v.onWatermark('b', 20)).toBe(20);
    v.onWatermark('a', 12);
    // 'b' idle, 'a' active but behind: nothing counts, the output stays.
    expect(v.onIdle('b')).toBeUndefined();
    expect(v.current).toBe(20);
    expect(v.onWatermark('a', 18)).toBeUndefined();
    expect(v.onWatermark('a', 21)).toBe(21);
  });

  it('property: the output never goes back, and when it moves it is the minimum over the active aligned channels', () => {
    const names = ['a', 'b', 'c', 'd'] as const;
    type Step =
      | { op: 'watermark'; ch: number; by: number }
      | { op: 'idle'; ch: number }
      | { op: 'active'; ch: number }
      | { op: 'add'; ch: number }
      | { op: 'remove'; ch: number };
    const ch = fc.nat(names.length - 1);
    const step: fc.Arbitrary<Step> = fc.oneof(
      // Mostly rising per channel, by steps of different sizes, now and then going back (which the valve ignores).
      { weight: 12, arbitrary: fc.record({ op: fc.constant('watermark' as const), ch, by: fc.integer({ min: -3, max: 12 }) }) },
      { weight: 3, arbitrary: fc.record({ op: fc.constant('idle' as const), ch }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant('active' as const), ch }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant('add' as const), ch }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('remove' as const), ch }) },
    );
    fc.assert(
      fc.property(fc.subarray([...names], { minLength: 1 }), fc.array(step, { maxLength: 80, size: 'large' }), (initial, steps) => {
        const v = new WatermarkValve(initial);
        // What each channel was told, independently of the valve: its highest watermark and whether it is idle.
        const model = new Map(initial.map((c) => [c as string, { wm: NO_WATERMARK, idle: false }]));
        for (const s of steps) {
          const c = names[s.ch]!;
          const before = v.current;
          const known = model.get(c);
          let res: number | undefined;
          // Steps after which the valve recomputes its minimum (others only change statuses).
          let recomputes = false;
          switch (s.op) {
            case 'watermark': {
              const wm = Math.max(known?.wm ?? 0, 0) + s.by;
              res = v.onWatermark(c, wm);
              if (known) {
                known.wm = Math.max(known.wm, wm);
                known.idle = false;
                recomputes = true;
              }
              break;
            }
            case 'idle':
              res = v.onIdle(c);
              if (known && !known.idle) {
                known.idle = true;
                recomputes = true;
              }
              break;
            case 'active':
              v.onActive(c);
              if (known) known.idle = false;
              break;
            case 'add':
              v.add(c);
              if (!known) model.set(c, { wm: NO_WATERMARK, idle: false });
              break;
            case 'remove':
              res = v.remove(c);
              recomputes = model.delete(c);
              break;
          }
          const out = v.current;
          const inputs = [...v.inputs.values()];
          const counted = inputs.filter((x) => !x.idle && x.aligned).map((x) => x.watermark);
          const minCounted = Math.min(...counted);
          const allIdle = inputs.length > 0 && inputs.every((x) => x.idle);

          expect([...v.inputs].map(([k, x]) => [k, x.watermark, x.idle])).toEqual([...model].map(([k, x]) => [k, x.wm, x.idle]));
          expect(v.idle).toBe(allIdle);
          expect(out).toBeGreaterThanOrEqual(before);
          expect(res).toBe(out > before ? out : undefined);
          if (out > before) {
            if (inputs.length === 0) expect(out).toBe(END_WATERMARK);
            else if (s.op === 'idle' && allIdle) expect(out).toBe(Math.max(...inputs.map((x) => x.watermark)));
            else {
              expect(counted.length).toBeGreaterThan(0);
              expect(out).toBe(minCounted);
            }
          }
          // The last channel going idle lets the output rise to the highest watermark.
          if (s.op === 'idle' && recomputes && allIdle) expect(out).toBe(Math.max(before, ...inputs.map((x) => x.watermark)));
          // Nothing that counts is behind the output, and after a recomputation the output is their minimum.
          expect(minCounted).toBeGreaterThanOrEqual(out);
          if (recomputes && counted.length > 0 && !allIdle) expect(out).toBe(minCounted);
          // An active channel counts as soon as it caught up with the output.
          for (const x of inputs) if (!x.idle && x.watermark >= out) expect(x.aligned).toBe(true);
        }
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });
});
