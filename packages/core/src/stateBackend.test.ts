import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeValue } from './codec.ts';
import type { Key } from './hashing.ts';
import { keyGroupFor, keyGroupsOf, rangeFor } from './keyGroups.ts';
import { KeyedStateBackend } from './stateBackend.ts';

const MAX_P = 128;

/** Writes one of every state kind for `key`, with contents derived from `n`. */
function writeAll(b: KeyedStateBackend, key: Key, n: number): void {
  b.setCurrentKey(key);
  b.valueState<number>('v').update(n);
  const list = b.listState<string>('l');
  list.add(`a${n}`);
  list.add(`b${n}`);
  b.mapState<string, number>('m').put('x', n);
  b.mapState<string, number>('m').put('y', 100 + n);
  const r = b.reducingState<number>('r', (a, c) => a + c);
  r.add(n);
  r.add(1);
}

/** Reads every state kind for `key` back, in one comparable value. */
function readAll(b: KeyedStateBackend, key: Key) {
  b.setCurrentKey(key);
  return {
    v: b.valueState<number>('v').value(),
    l: [...b.listState<string>('l').get()],
    m: [...b.mapState<string, number>('m').entries()],
    r: b.reducingState<number>('r', (a, c) => a + c).get(),
  };
}

const EMPTY = { v: undefined, l: [], m: [], r: undefined };

/** Keys spread over many key groups: at least one key in each of `groups`. */
function keysIn(groups: readonly number[], perGroup = 2): string[] {
  const want = new Map(groups.map((g) => [g, perGroup]));
  const out: string[] = [];
  for (let i = 0; want.size > 0; i++) {
    const k = `k${i}`;
    const g = keyGroupFor(k, MAX_P);
    const left = want.get(g);
    if (left === undefined) continue;
    out.push(k);
    if (left === 1) want.delete(g);
    else want.set(g, left - 1);
  }
  return out;
}

describe('KeyedStateBackend handles are scoped to the current key', () => {
  it('value state', () => {
    const b = new KeyedStateBackend(MAX_P);
    const s = b.valueState<number>('v');
    b.setCurrentKey('a');
    expect(s.value()).toBeUndefined();
    s.update(1);
    b.setCurrentKey('b');
    expect(s.value()).toBeUndefined();
    s.update(2);
    b.setCurrentKey('a');
    expect(s.value()).toBe(1);
    s.clear();
    expect(s.value()).toBeUndefined();
    b.setCurrentKey('b');
    expect(s.value()).toBe(2);
  });

  it('list state', () => {
    const b = new KeyedStateBackend(MAX_P);
    const s = b.listState<number>('l');
    b.setCurrentKey('a');
    expect(s.get()).toEqual([]);
    s.add(1);
    s.add(2);
    b.setCurrentKey('b');
    expect(s.get()).toEqual([]);
    s.update([9, 8]);
    b.setCurrentKey('a');
    expect(s.get()).toEqual([1, 2]);
    s.clear();
    expect(s.get()).toEqual([]);
    b.setCurrentKey('b');
    expect(s.get()).toEqual([9, 8]);
  });

  it('map state', () => {
    const b = new KeyedStateBackend(MAX_P);
    const s = b.mapState<string, number>('m');
    b.setCurrentKey('a');
    expect(s.get('x')).toBeUndefined();
    expect([...s.entries()]).toEqual([]);
    s.put('x', 1);
    s.put('y', 2);
    b.setCurrentKey('b');
    expect(s.get('x')).toBeUndefined();
    s.put('x', 10);
    b.setCurrentKey('a');
    s.remove('y');
    expect([...s.entries()]).toEqual([['x', 1]]);
    s.clear();
    expect([...s.entries()]).toEqual([]);
    b.setCurrentKey('b');
    expect(s.get('x')).toBe(10);
  });

  it('reducing state', () => {
    const b = new KeyedStateBackend(MAX_P);
    const s = b.reducingState<number>('r', (x, y) => Math.max(x, y));
    b.setCurrentKey('a');
    expect(s.get()).toBeUndefined();
    for (const v of [3, 7, 5]) s.add(v);
    b.setCurrentKey('b');
    s.add(1);
    b.setCurrentKey('a');
    expect(s.get()).toBe(7);
    s.clear();
    expect(s.get()).toBeUndefined();
    b.setCurrentKey('b');
    expect(s.get()).toBe(1);
  });

  it('keeps keys of different types apart (1, "1", 1n, true)', () => {
    const b = new KeyedStateBackend(MAX_P);
    const s = b.valueState<string>('v');
    const keys: Key[] = [1, '1', 1n, true];
    for (const k of keys) {
      b.setCurrentKey(k);
      s.update(`${typeof k}`);
    }
    for (const k of keys) {
      b.setCurrentKey(k);
      expect(s.value()).toBe(typeof k);
    }
  });

  it('two handles of one name share the state', () => {
    const b = new KeyedStateBackend(MAX_P);
    b.setCurrentKey('a');
    b.valueState<number>('v').update(5);
    expect(b.valueState<number>('v').value()).toBe(5);
  });

  it.each([
    ['value', 'list'],
    ['list', 'map'],
    ['map', 'reducing'],
    ['reducing', 'value'],
  ] as const)('throws when a %s state name is reused as a %s state', (first, second) => {
    const b = new KeyedStateBackend(MAX_P);
    const open = {
      value: () => b.valueState('s'),
      list: () => b.listState('s'),
      map: () => b.mapState('s'),
      reducing: () => b.reducingState<number>('s', (x, y) => x + y),
    };
    open[first]();
    expect(() => open[second]()).toThrow(`state 's' is a ${first} state, not a ${second} state`);
  });
});

describe('KeyedStateBackend snapshot and restore', () => {
  it('snapshots only the chosen key groups, leaving empty ones out', () => {
    const keys = keysIn([3, 4, 10]);
    const b = new KeyedStateBackend(MAX_P);
    keys.forEach((k, i) => writeAll(b, k, i));
    // A group whose only key was cleared holds nothing and is left out too.
    const cleared = keysIn([20], 1)[0]!;
    b.setCurrentKey(cleared);
    b.valueState<number>('v').update(1);
    b.valueState<number>('v').clear();

    const snap = b.snapshot([3, 4, 5, 20, 99]);
    expect([...snap.keys()].sort((x, y) => x - y)).toEqual([3, 4]);
    expect(b.snapshot([]).size).toBe(0);
  });

  it('restores into a fresh backend: identical values for every key of those groups, nothing for others', () => {
    const keys = keysIn([0, 1, 2, 7, 64, 127], 3);
    const src = new KeyedStateBackend(MAX_P);
    keys.forEach((k, i) => writeAll(src, k, i));

    const chosen = new Set([1, 7, 127]);
    const dst = new KeyedStateBackend(MAX_P);
    for (const [kg, bytes] of src.snapshot(chosen)) dst.restore(kg, bytes);

    for (const k of keys) {
      const expected = chosen.has(keyGroupFor(k, MAX_P)) ? readAll(src, k) : EMPTY;
      expect(readAll(dst, k)).toEqual(expected);
    }
  });

  it('round-trips bigint, number and boolean keys and bigint values', () => {
    const src = new KeyedStateBackend(MAX_P);
    const keys: Key[] = [1234567890123n, -5n, 42, 3.5, true, 'x'];
    keys.forEach((k, i) => {
      src.setCurrentKey(k);
      src.valueState<bigint>('big').update(BigInt(i) * 10n ** 20n);
      src.mapState<Key, number>('m').put(k, i);
    });
    const dst = new KeyedStateBackend(MAX_P);
    for (const [kg, bytes] of src.snapshot(keyGroupsOf({ start: 0, end: MAX_P - 1 }))) dst.restore(kg, bytes);
    keys.forEach((k, i) => {
      dst.setCurrentKey(k);
      expect(dst.valueState<bigint>('big').value()).toBe(BigInt(i) * 10n ** 20n);
      expect(dst.mapState<Key, number>('m').get(k)).toBe(i);
    });
  });

  it("replaces the group's previous content on restore", () => {
    const [k1, k2] = keysIn([9], 2) as [string, string];
    const src = new KeyedStateBackend(MAX_P);
    src.setCurrentKey(k1);
    src.valueState<number>('v').update(1);
    const bytes = src.snapshot([9]).get(9)!;

    const dst = new KeyedStateBackend(MAX_P);
    dst.setCurrentKey(k1);
    dst.valueState<number>('v').update(100);
    dst.setCurrentKey(k2);
    dst.valueState<number>('v').update(200);
    dst.listState<number>('other').add(1);
    dst.restore(9, bytes);

    dst.setCurrentKey(k1);
    expect(dst.valueState<number>('v').value()).toBe(1);
    dst.setCurrentKey(k2);
    expect(dst.valueState<number>('v').value()).toBeUndefined();
    expect(dst.listState<number>('other').get()).toEqual([]);
    expect(dst.keyCount(9)).toBe(1);
  });

  it('does not share mutable state between the source and a restored copy', () => {
    const [k] = keysIn([5], 1) as [string];
    const src = new KeyedStateBackend(MAX_P);
    writeAll(src, k, 1);
    const dst = new KeyedStateBackend(MAX_P);
    dst.restore(5, src.snapshot([5]).get(5)!);
    writeAll(src, k, 2);
    expect(readAll(dst, k)).toEqual({
      v: 1,
      l: ['a1', 'b1'],
      m: [
        ['x', 1],
        ['y', 101],
      ],
      r: 2,
    });
  });

  it('throws when a restored state name exists with another kind', () => {
    const [k] = keysIn([5], 1) as [string];
    const src = new KeyedStateBackend(MAX_P);
    src.setCurrentKey(k);
    src.valueState<number>('s').update(1);
    const dst = new KeyedStateBackend(MAX_P);
    dst.listState<number>('s');
    expect(() => dst.restore(5, src.snapshot([5]).get(5)!)).toThrow("state 's' is a list state, not a value state");
  });

  it('50k keys over maxP 128 split by rangeFor at p=3: each subtask restores its range, the union equals the original', () => {
    const n = 50_000;
    const src = new KeyedStateBackend(MAX_P);
    const count = src.valueState<number>('count');
    const seen = src.listState<number>('seen');
    for (let i = 0; i < n; i++) {
      src.setCurrentKey(`user-${i}`);
      count.update(i);
      if (i % 7 === 0) seen.add(i);
    }
    const all = src.snapshot(keyGroupsOf({ start: 0, end: MAX_P - 1 }));
    expect(all.size).toBe(MAX_P);

    const subtasks = [0, 1, 2].map((i) => {
      const range = rangeFor(i, 3, MAX_P);
      const b = new KeyedStateBackend(MAX_P);
      for (const kg of keyGroupsOf(range)) b.restore(kg, all.get(kg)!);
      return { range, b };
    });

    expect(subtasks.reduce((s, { b }) => s + b.keyCount(), 0)).toBe(src.keyCount());
    const wrong: string[] = [];
    for (let i = 0; i < n; i++) {
      const key = `user-${i}`;
      const kg = keyGroupFor(key, MAX_P);
      for (const { range, b } of subtasks) {
        b.setCurrentKey(key, kg);
        const owns = kg >= range.start && kg <= range.end;
        const seenHere = b.listState<number>('seen').get();
        const ok =
          b.valueState<number>('count').value() === (owns ? i : undefined) &&
          seenHere.length === (owns && i % 7 === 0 ? 1 : 0) &&
          (seenHere.length === 0 || seenHere[0] === i);
        if (!ok) wrong.push(`${key} at subtask with ${JSON.stringify(range)}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});

describe('KeyedStateBackend asynchronous snapshot (copy on write per entry)', () => {
  const ALL = Array.from({ length: MAX_P }, (_, i) => i);
  const filled = (keys: string[]) => {
    const b = new KeyedStateBackend(MAX_P);
    keys.forEach((k, i) => writeAll(b, k, i));
    return b;
  };
  /** What a backend restored from `parts` holds for `keys`. */
  const contents = (parts: Map<number, Buffer>, keys: string[]) => {
    const b = new KeyedStateBackend(MAX_P);
    for (const [kg, bytes] of parts) b.restore(kg, bytes);
    return keys.map((k) => readAll(b, k));
  };

  it('captures the state as of the call while every key is changed before it resolves, and yields in between', async () => {
    const keys = keysIn(ALL, 40);
    const b = filled(keys);
    const expected = contents(b.snapshot(ALL), keys);
    const pending = b.snapshotAsync(ALL, { entries: 200 });
    let yielded = false;
    setImmediate(() => {
      yielded = true;
      // Processing goes on between slices: every key changes, also in groups already copied.
      keys.forEach((k, i) => writeAll(b, k, 1000 + i));
    });
    const parts = await pending;
    expect(yielded).toBe(true);
    expect(contents(parts, keys)).toEqual(expected);
    expect(readAll(b, keys[0]!).v).toBe(1000);
  });

  it('slices by time by default: with no time to spare it yields after every group, and captures the state as of the call', async () => {
    const keys = keysIn(ALL, 40);
    const b = filled(keys);
    const expected = contents(b.snapshot(ALL), keys);
    const pending = b.snapshotAsync(ALL, { ms: 0 });
    let turns = 0;
    let done = false;
    void pending.then(() => (done = true));
    const turn = () =>
      setImmediate(() => {
        if (done) return;
        turns++;
        keys.forEach((k, i) => writeAll(b, k, 2000 + turns + i));
        turn();
      });
    turn();
    expect(contents(await pending, keys)).toEqual(expected);
    // A turn of processing between any two of the groups that hold keys (the last one resolves without a yield).
    expect(turns).toBeGreaterThanOrEqual(new Set(keys.map((k) => keyGroupFor(k, MAX_P))).size - 2);
  });

  it('copies a group before a restore, a detach or another snapshot replaces or takes it', async () => {
    const keys = keysIn([1, 2, 3], 3);
    const b = filled(keys);
    const expected = contents(b.snapshot([1, 2, 3]), keys);
    const first = b.snapshotAsync([1, 2, 3], { entries: 1 });
    const other = new KeyedStateBackend(MAX_P);
    keysIn([2], 3).forEach((k, i) => writeAll(other, k, 500 + i));
    b.restore(2, other.snapshot([2]).get(2)!);
    b.detach([3]);
    const second = await b.snapshotAsync([1, 2, 3]);
    expect(contents(await first, keys)).toEqual(expected);
    expect(second.has(3)).toBe(false);
    expect(second.get(2)).toEqual(other.snapshot([2]).get(2));
  });

  it('captures the state as of the call through any mix of reads, in-place changes, new keys, new states and clears (seeded property)', async () => {
    const seed = Number(process.env.KEYFLOW_PROPERTY_SEED ?? Date.now() % 2 ** 31);
    console.log(`asynchronous snapshot property seed ${seed}`);
    const keys = keysIn([0, 1, 2, 3, 4, 5], 6);
    const groups = [0, 1, 2, 3, 4, 5];
    const op = fc.record({
      key: fc.constantFrom(...keys, 'late-1', 'late-2'),
      what: fc.constantFrom(
        'read',
        'update',
        'update-text',
        'update-object',
        'push-in-place',
        'push-in-place-v',
        'list-add',
        'map-put',
        'map-remove',
        'clear-all',
        'new-state',
        'reduce',
      ),
      n: fc.integer({ min: 0, max: 1000 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(op, { maxLength: 30 }), { maxLength: 8 }),
        fc.integer({ min: 1, max: 20 }),
        // Each key's state as the snapshot begins: every kind, numbers only, or a value state that holds an object
        // beside the numbers of other keys.
        fc.array(fc.constantFrom('all', 'numbers', 'object-in-v'), { minLength: keys.length, maxLength: keys.length }),
        async (turns, slice, shapes) => {
          const b = new KeyedStateBackend(MAX_P);
          keys.forEach((k, i) => {
            b.setCurrentKey(k);
            if (shapes[i] === 'numbers') {
              b.valueState<number>('v').update(i);
              b.reducingState<number>('r', (a, c) => a + c).add(i);
            } else if (shapes[i] === 'object-in-v') b.valueState<number[]>('v').update([i]);
            else {
              writeAll(b, k, i);
              b.setCurrentKey(k);
              b.valueState<number[]>('obj').update([i]);
            }
          });
          const expected = b.snapshot(groups);
          const pending = b.snapshotAsync(groups, { entries: slice });
          // Processing goes on between the snapshot's slices.
          for (const ops of turns) {
            await new Promise((r) => setImmediate(r));
            for (const { key, what, n } of ops) {
              b.setCurrentKey(key);
              if (what === 'read') readAll(b, key);
              else if (what === 'update') b.valueState<number>('v').update(n);
              // A state of numbers that comes to hold other values.
              else if (what === 'update-text') b.valueState<string>('v').update(`t${n}`);
              else if (what === 'update-object') b.valueState<number[]>('v').update([n]);
              else if (what === 'push-in-place') {
                // A value read and changed in place, then written back: the snapshot must not see the change.
                const arr = b.valueState<number[]>('obj').value() ?? [];
                arr.push(n);
                b.valueState<number[]>('obj').update(arr);
              } else if (what === 'push-in-place-v') {
                // Changed in place and not written back: the snapshot must not see the change either.
                const v = b.valueState<unknown>('v').value();
                if (Array.isArray(v)) v.push(n);
              } else if (what === 'list-add') b.listState<string>('l').add(`z${n}`);
              else if (what === 'map-put') b.mapState<string, number>('m').put(`p${n % 3}`, n);
              else if (what === 'map-remove') b.mapState<string, number>('m').remove('x');
              else if (what === 'clear-all') {
                b.valueState('v').clear();
                b.listState('l').clear();
                b.mapState('m').clear();
                b.valueState('obj').clear();
              } else if (what === 'new-state') b.valueState<number>(`new${n % 2}`).update(n);
              else b.reducingState<number>('r', (a, c) => a + c).add(n);
            }
          }
          const parts = await pending;
          expect([...parts.keys()].sort()).toEqual([...expected.keys()].sort());
          // The same keys and values per state (a key cleared since may come last).
          const sorted = (bytes: Buffer) =>
            Object.entries(decodeValue<Record<string, { kind: string; keys: Key[]; values: unknown[] }>>(bytes)).map(([name, t]) => [
              name,
              t.kind,
              t.keys.map((k, i) => [k, t.values[i]]).sort((a, c) => String(a[0]).localeCompare(String(c[0]))),
            ]);
          for (const [kg, bytes] of expected) expect(sorted(parts.get(kg)!)).toEqual(sorted(bytes));
        },
      ),
      { seed, numRuns: Number(process.env.KEYFLOW_PROPERTY_RUNS ?? 200) },
    );
  });

  it('leaves out groups without state and resolves at once for none', async () => {
    const b = filled(keysIn([7], 2));
    expect([...(await b.snapshotAsync([6, 7, 8])).keys()]).toEqual([7]);
    expect((await b.snapshotAsync([])).size).toBe(0);
  });
});

describe('KeyedStateBackend pre-copy: a copy, then only what changed', () => {
  it('a copy plus its delta rebuild each tracked group exactly, through updates, new keys, clears and reads', () => {
    const keys = keysIn([3, 4, 9], 6);
    const src = new KeyedStateBackend(MAX_P);
    keys.forEach((k, i) => writeAll(src, k, i));
    src.trackChanges([3, 4]);
    const copies = new Map([3, 4].map((kg) => [kg, src.copyTracked(kg)!]));
    // After the copy: change some keys, add new ones, clear states, and only read others.
    keys.forEach((k, i) => {
      if (i % 3 === 0) writeAll(src, k, 100 + i);
      else if (i % 3 === 1) {
        src.setCurrentKey(k);
        src.valueState<number>('v').clear();
        src.mapState<string, number>('m').remove('x');
        src.listState<string>('l').clear();
      } else readAll(src, k);
    });
    const added = keysIn([3, 4], 2)
      .map((k) => `${k}-new`)
      .filter((k) => [3, 4].includes(keyGroupFor(k, MAX_P)));
    added.forEach((k, i) => writeAll(src, k, 500 + i));

    const dst = new KeyedStateBackend(MAX_P);
    for (const [kg, copy] of copies) {
      dst.restore(kg, copy);
      dst.applyDelta(kg, src.delta(kg));
    }
    for (const k of [...keys, ...added]) {
      const kg = keyGroupFor(k, MAX_P);
      expect(readAll(dst, k)).toEqual(kg === 9 ? EMPTY : readAll(src, k));
    }
    expect(dst.keyCount()).toBe(src.keyCount(3) + src.keyCount(4));
  });

  it('a group untouched since its copy has an empty delta', () => {
    const keys = keysIn([5], 3);
    const b = new KeyedStateBackend(MAX_P);
    keys.forEach((k, i) => writeAll(b, k, i));
    b.trackChanges([5]);
    b.copyTracked(5);
    writeAll(b, keysIn([6], 1)[0]!, 1); // another group
    const dst = new KeyedStateBackend(MAX_P);
    dst.applyDelta(5, b.delta(5));
    expect(dst.keyCount()).toBe(0);
  });

  it('detach takes groups out at once and serializes them later as they were', () => {
    const keys = keysIn([1, 2], 3);
    const b = new KeyedStateBackend(MAX_P);
    keys.forEach((k, i) => writeAll(b, k, i));
    const expected = b.snapshot([1, 2]);
    const encode = b.detach([1, 2]);
    expect(b.keyCount()).toBe(0);
    // The groups are this backend's again, fresh: the detached copy does not see what is written now.
    keys.forEach((k) => writeAll(b, k, 99));
    expect(new Map([1, 2].map((kg) => [kg, encode(kg)]))).toEqual(expected);
    expect(encode(1)).toBeUndefined(); // each group is handed out once
  });
});
