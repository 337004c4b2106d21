import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Key } from './hashing.ts';
import { keyGroupFor, keyGroupsOf, rangeFor } from './keyGroups.ts';
import { KeyedStateBackend } from './stateBackend.ts';
import { KeyedTimers } from './timers.ts';

/** KEYFLOW_PROPERTY_RUNS=n runs more cases (default 100); KEYFLOW_PROPERTY_SEED=s replays a run. */
const RUNS = Number(process.env.KEYFLOW_PROPERTY_RUNS ?? 100);
const SEED = Number(process.env.KEYFLOW_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));
beforeAll(() => console.log(`timer properties: seed ${SEED}, ${RUNS} runs (replay with KEYFLOW_PROPERTY_SEED=${SEED})`));

const MAX_P = 128;
const ALL = keyGroupsOf({ start: 0, end: MAX_P - 1 });

/** Timers over their own backend, and what `advance` fired, with the key the backend was scoped to at each. */
function setup(backend = new KeyedStateBackend(MAX_P), name = 'timers') {
  const timers = new KeyedTimers(backend, name);
  const fired: [number, Key][] = [];
  const at = (key: Key, ...ts: number[]) => {
    backend.setCurrentKey(key);
    for (const t of ts) timers.register(t);
  };
  const advance = (time: number) => {
    fired.length = 0;
    timers.advance(time, (ts, key) => {
      expect(backend.currentKey).toBe(key);
      fired.push([ts, key]);
    });
    return [...fired];
  };
  return { backend, timers, at, advance };
}

describe('KeyedTimers', () => {
  it('fires the timers due by the time given, in time order over keys, each with its key current', () => {
    const t = setup();
    t.at('a', 30, 10);
    t.at('b', 20);
    t.at('c', 10, 40);
    expect(t.timers.next).toBe(10);
    expect(t.advance(5)).toEqual([]);
    expect(t.advance(20)).toEqual([
      [10, 'a'],
      [10, 'c'],
      [20, 'b'],
    ]);
    expect(t.timers.next).toBe(30);
    expect(t.advance(20)).toEqual([]);
    expect(t.advance(Infinity)).toEqual([
      [30, 'a'],
      [40, 'c'],
    ]);
    expect(t.timers.next).toBeUndefined();
    expect(t.backend.keyCount()).toBe(0);
  });

  it('keeps one timer per key and time however often it is registered', () => {
    const t = setup();
    t.at('a', 10, 10, 10);
    t.at('b', 10);
    t.at('a', 10);
    expect(t.advance(10)).toEqual([
      [10, 'a'],
      [10, 'b'],
    ]);
  });

  it('deletes a timer of the current key only, and drops the key from state with its last timer', () => {
    const t = setup();
    t.at('a', 10, 20);
    t.at('b', 10);
    t.backend.setCurrentKey('a');
    t.timers.delete(10);
    expect(t.backend.keyCount()).toBe(2);
    t.timers.delete(20);
    expect(t.backend.keyCount()).toBe(1);
    // Deleting what is not there is harmless.
    t.timers.delete(99);
    // The earliest time may still be a deleted timer's.
    expect(t.timers.next).toBe(10);
    expect(t.advance(100)).toEqual([[10, 'b']]);
  });

  it('fires a timer deleted and registered again once', () => {
    const t = setup();
    t.at('a', 10);
    t.timers.delete(10);
    t.at('a', 10);
    expect(t.advance(10)).toEqual([[10, 'a']]);
  });

  it('fires in the same call what a firing registers at or before the time, later what it registers after', () => {
    const { backend, timers } = setup();
    backend.setCurrentKey('a');
    timers.register(10);
    const fired: [number, Key][] = [];
    timers.advance(20, (ts, key) => {
      fired.push([ts, key]);
      if (ts === 10) {
        timers.register(15);
        timers.register(25);
        backend.setCurrentKey('b');
        timers.register(20);
      }
    });
    expect(fired).toEqual([
      [10, 'a'],
      [15, 'a'],
      [20, 'b'],
    ]);
    fired.length = 0;
    timers.advance(30, (ts, key) => fired.push([ts, key]));
    expect(fired).toEqual([[25, 'a']]);
  });

  it('keeps timers as keyed state: a backend restored from a snapshot fires them', () => {
    const before = setup();
    before.at('a', 10, 30);
    before.at(7, 20);
    before.at(5n, 40);
    const after = setup();
    // Timers are listed with the key groups that hold them, once the groups are loaded.
    expect(after.timers.next).toBeUndefined();
    for (const [kg, bytes] of before.backend.snapshot(ALL)) after.backend.restore(kg, bytes);
    expect(after.advance(Infinity)).toEqual([
      [10, 'a'],
      [20, 7],
      [30, 'a'],
      [40, 5n],
    ]);
  });

  it('keeps two timer sets on one backend apart', () => {
    const backend = new KeyedStateBackend(MAX_P);
    const event = setup(backend, 'timers');
    const processing = setup(backend, 'processingTimers');
    event.at('a', 10);
    processing.at('a', 1000);
    expect(event.advance(Infinity)).toEqual([[10, 'a']]);
    expect(processing.advance(999)).toEqual([]);
    expect(processing.advance(1000)).toEqual([[1000, 'a']]);
  });

  it('skips the timers of key groups detached since, and fires them again where the groups are loaded', () => {
    const t = setup();
    const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
    keys.forEach((k, i) => t.at(k, 10 * (i + 1)));
    const leaving = new Set([keyGroupFor('b', MAX_P), keyGroupFor('e', MAX_P)]);
    const serialize = t.backend.detach(leaving);
    const other = setup();
    for (const kg of leaving) other.backend.restore(kg, serialize(kg)!);
    const stay = keys.filter((k) => !leaving.has(keyGroupFor(k, MAX_P)));
    const move = keys.filter((k) => leaving.has(keyGroupFor(k, MAX_P)));
    expect(move.length).toBeGreaterThanOrEqual(2);
    expect(t.advance(Infinity).map(([, k]) => k)).toEqual(stay);
    expect(other.advance(Infinity).map(([, k]) => k)).toEqual(move);
  });

  it("leaves alone the timers of key groups it does not own yet (a rescale's pre-copy), and fires them once the group is loaded as its own", () => {
    const source = setup();
    source.at('a', 10);
    source.at('b', 10);
    const kgA = keyGroupFor('a', MAX_P);
    const owned = new Set<number>([keyGroupFor('b', MAX_P)]);
    const backend = new KeyedStateBackend(MAX_P);
    const timers = new KeyedTimers(backend, 'timers', (kg) => owned.has(kg));
    const fired: Key[] = [];
    // The pre-copy of both groups arrives; only b's group is this subtask's.
    for (const [kg, bytes] of source.backend.snapshot(ALL)) backend.restore(kg, bytes);
    timers.advance(100, (_ts, key) => fired.push(key));
    expect(fired).toEqual(['b']);
    // a's state is untouched: its old owner still runs it. At the barrier the group is loaded again, now owned.
    owned.add(kgA);
    backend.restore(kgA, source.backend.snapshot([kgA]).get(kgA)!);
    timers.advance(100, (_ts, key) => fired.push(key));
    expect(fired).toEqual(['b', 'a']);
  });

  it('fires a timer once when its key group comes back after it left', () => {
    const t = setup();
    t.at('a', 10);
    const kg = keyGroupFor('a', MAX_P);
    const bytes = t.backend.detach([kg])(kg)!;
    t.backend.restore(kg, bytes);
    expect(t.advance(10)).toEqual([[10, 'a']]);
    expect(t.advance(Infinity)).toEqual([]);
  });

  it('follows a copy and its delta: timers registered, fired and deleted in between', () => {
    const src = setup();
    src.at('a', 10, 20);
    src.at('b', 30);
    const groups = [...new Set(['a', 'b', 'c'].map((k) => keyGroupFor(k, MAX_P)))];
    src.backend.trackChanges(groups);
    const dst = setup();
    for (const kg of groups) {
      const copy = src.backend.copyTracked(kg);
      if (copy) dst.backend.restore(kg, copy);
    }
    src.advance(10);
    src.at('b', 35);
    src.at('c', 5);
    src.backend.setCurrentKey('a');
    src.timers.delete(20);
    for (const kg of groups) dst.backend.applyDelta(kg, src.backend.delta(kg));
    expect(dst.advance(Infinity)).toEqual([
      [5, 'c'],
      [30, 'b'],
      [35, 'b'],
    ]);
  });

  it('property: over registrations, deletions, checkpoint restores and live rescales, every timer fires once, in time order, where its key lives', () => {
    const maxP = 8;
    const keys = Array.from({ length: 12 }, (_, i) => `k${i}`);
    type Step =
      | { op: 'register'; key: number; ts: number }
      | { op: 'delete'; key: number; ts: number }
      | { op: 'advance'; by: number }
      | { op: 'restore'; p: number }
      | { op: 'rescale'; p: number };
    const key = fc.nat(keys.length - 1);
    const ts = fc.integer({ min: 0, max: 200 });
    const step: fc.Arbitrary<Step> = fc.oneof(
      { weight: 8, arbitrary: fc.record({ op: fc.constant('register' as const), key, ts }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), key, ts }) },
      { weight: 3, arbitrary: fc.record({ op: fc.constant('advance' as const), by: fc.integer({ min: 0, max: 40 }) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('restore' as const), p: fc.integer({ min: 1, max: 4 }) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('rescale' as const), p: fc.integer({ min: 1, max: 4 }) }) },
    );
    type Owner = { backend: KeyedStateBackend; timers: KeyedTimers; range: { start: number; end: number } };
    const owner = (i: number, p: number, backend = new KeyedStateBackend(maxP)): Owner => ({
      backend,
      timers: new KeyedTimers(backend, 'timers'),
      range: rangeFor(i, p, maxP),
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(step, { maxLength: 60, size: 'large' }), (p0, steps) => {
        let owners = Array.from({ length: p0 }, (_, i) => owner(i, p0));
        const ownerOf = (k: Key) => owners.find((o) => o.range.start <= keyGroupFor(k, maxP) && keyGroupFor(k, maxP) <= o.range.end)!;
        // The model: each key's pending timers.
        const pending = new Map<Key, Set<number>>(keys.map((k) => [k, new Set()]));
        let now = -1;
        for (const s of steps) {
          if (s.op === 'register' || s.op === 'delete') {
            const k = keys[s.key]!;
            const o = ownerOf(k);
            o.backend.setCurrentKey(k);
            if (s.op === 'register') {
              // Like a window's timer: never at or before the time the timers were advanced to.
              const at = now + 1 + s.ts;
              o.timers.register(at);
              pending.get(k)!.add(at);
            } else {
              const at = [...pending.get(k)!][s.ts % Math.max(1, pending.get(k)!.size)] ?? now + 1 + s.ts;
              o.timers.delete(at);
              pending.get(k)!.delete(at);
            }
          } else if (s.op === 'advance') {
            now += s.by;
            const fired: [number, Key][] = [];
            for (const o of owners) {
              const mine: number[] = [];
              o.timers.advance(now, (t, k) => {
                expect(o.backend.currentKey).toBe(k);
                expect(ownerOf(k)).toBe(o);
                mine.push(t);
                fired.push([t, k]);
              });
              expect(mine).toEqual([...mine].sort((a, b) => a - b));
            }
            const expected: [number, Key][] = [];
            for (const [k, set] of pending)
              for (const t of set)
                if (t <= now) {
                  expected.push([t, k]);
                  set.delete(t);
                }
            const order = (a: [number, Key], b: [number, Key]) => a[0] - b[0] || String(a[1]).localeCompare(String(b[1]));
            expect(fired.sort(order)).toEqual(expected.sort(order));
          } else if (s.op === 'restore') {
            // A checkpoint of every owner's range, restored into fresh backends at another parallelism.
            const bytes = new Map<number, Buffer>();
            for (const o of owners) for (const [kg, b] of o.backend.snapshot(keyGroupsOf(o.range))) bytes.set(kg, b);
            owners = Array.from({ length: s.p }, (_, i) => owner(i, s.p));
            for (const o of owners) for (const kg of keyGroupsOf(o.range)) if (bytes.has(kg)) o.backend.restore(kg, bytes.get(kg)!);
          } else {
            // A live rescale: owners that stay keep their backend (and its index), groups that move are detached and loaded.
            const next = Array.from({ length: s.p }, (_, i) =>
              i < owners.length ? { ...owners[i]!, range: rangeFor(i, s.p, maxP) } : owner(i, s.p),
            );
            for (let kg = 0; kg < maxP; kg++) {
              const from = owners.find((o) => o.range.start <= kg && kg <= o.range.end)!;
              const to = next.find((o) => o.range.start <= kg && kg <= o.range.end)!;
              if (from.backend === to.backend) continue;
              const b = from.backend.detach([kg])(kg);
              if (b) to.backend.restore(kg, b);
            }
            owners = next;
          }
          for (const o of owners) {
            const due = [...pending].filter(([k]) => ownerOf(k) === o).flatMap(([, set]) => [...set]);
            // No pending timer comes before the earliest time it announces.
            if (due.length) expect(o.timers.next).toBeLessThanOrEqual(Math.min(...due));
          }
        }
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });
});
