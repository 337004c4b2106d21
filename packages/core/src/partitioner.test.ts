import { describe, expect, it } from 'vitest';
import { keyGroupFor, subtaskFor } from './keyGroups.ts';
import { ALL_CONSUMERS, isKey, NO_KEY, Partitioner } from './partitioner.ts';

describe('Partitioner', () => {
  it('sends forward to the one consumer', () => {
    const p = new Partitioner('forward', 3, 128, 1, 2);
    expect([p.target('a'), p.target(undefined)]).toEqual([0, 0]);
  });

  it.each([
    // key, p, maxP → consumer subtask (DESIGN §2: "hello" is key group 35, "u0" 119, "user-42" 20 at maxP 128)
    ['hello', 3, 128, 0],
    ['u0', 3, 128, 2],
    ['user-42', 2, 128, 0],
    ['Apple', 4, 128, 1],
    [1234567890123, 2, 128, 1],
  ])('hashes %s at p %i maxP %i to subtask %i', (key, parallelism, maxP, subtask) => {
    const p = new Partitioner('hash', parallelism, maxP, parallelism, 0);
    expect(p.target(key)).toBe(subtask);
    expect(p.target(key)).toBe(subtaskFor(keyGroupFor(key, maxP), parallelism, maxP));
  });

  it('gives no target to a record without a usable key', () => {
    const p = new Partitioner('hash', 2, 128, 2, 0);
    for (const key of [undefined, null, { a: 1 }, [1]]) expect(p.target(key)).toBe(NO_KEY);
  });

  it('deals round robin from its start, and keeps its place when the channel count changes', () => {
    const p = new Partitioner('rebalance', 3, 128, 3, 1);
    expect([p.target(0), p.target(0), p.target(0), p.target(0)]).toEqual([1, 2, 0, 1]);
    const q = new Partitioner('rebalance', 2, 128, 2, p.next);
    expect([q.target(0), q.target(0)]).toEqual([1, 0]);
  });

  it('broadcasts to all', () => {
    expect(new Partitioner('broadcast', 4, 128, 4, 0).target('x')).toBe(ALL_CONSUMERS);
  });

  it.each([
    ['s', true],
    [0, true],
    [1n, true],
    [false, true],
    [null, false],
    [undefined, false],
    [{}, false],
  ])('isKey(%s) is %s', (v, ok) => expect(isKey(v)).toBe(ok));
});
