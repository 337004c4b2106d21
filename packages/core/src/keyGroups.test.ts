import { describe, expect, it } from 'vitest';
import { javaHashCode, javaStringHashCode, murmurHash } from './hashing.ts';
import { defaultMaxParallelism, keyGroupFor, rangeFor, rescaleMoves, subtaskFor, UPPER_BOUND_MAX_PARALLELISM } from './keyGroups.ts';

describe('Flink key-group arithmetic (DESIGN §2 worked examples)', () => {
  it('murmurHash matches Flink MathUtils.murmurHash', () => {
    expect(murmurHash(2)).toBe(1085422463);
  });

  it('hashCode matches Java', () => {
    expect(javaStringHashCode('hello')).toBe(99162322);
    expect(javaStringHashCode('')).toBe(0);
    expect(javaHashCode(42)).toBe(42);
    expect(javaHashCode(-7)).toBe(-7);
    // Long.hashCode(1234567890123L) = (int)(v ^ (v >>> 32))
    expect(javaHashCode(1234567890123)).toBe(javaHashCode(1234567890123n));
    expect(javaHashCode(true)).toBe(1231);
  });

  it.each([
    ['hello', 128, 35],
    ['user-42', 128, 20],
    ['u0', 128, 119],
    ['u0', 32768, 15479],
    ['Apple', 128, 51],
  ])('keyGroup(%j) at maxP %i = %i', (key, maxP, kg) => {
    expect(keyGroupFor(key, maxP)).toBe(kg);
  });

  it('puts the long 1234567890123 in key group 92 at maxP 128', () => {
    expect(keyGroupFor(1234567890123, 128)).toBe(92);
    expect(keyGroupFor(1234567890123n, 128)).toBe(92);
  });

  it('splits 128 key groups over 3 subtasks as Flink does', () => {
    expect([0, 1, 2].map((i) => rangeFor(i, 3, 128))).toEqual([
      { start: 0, end: 42 },
      { start: 43, end: 85 },
      { start: 86, end: 127 },
    ]);
  });

  it('assigns every key group to the subtask whose range holds it, for p up to 16', () => {
    for (const maxP of [128, 256, 1000])
      for (let p = 1; p <= 16; p++) {
        let next = 0;
        for (let i = 0; i < p; i++) {
          const r = rangeFor(i, p, maxP);
          expect(r.start).toBe(next);
          for (let kg = r.start; kg <= r.end; kg++) expect(subtaskFor(kg, p, maxP)).toBe(i);
          next = r.end + 1;
        }
        expect(next).toBe(maxP);
      }
  });

  it.each([
    [1, 128],
    [85, 128],
    [86, 256],
    [200, 512],
    [30000, UPPER_BOUND_MAX_PARALLELISM],
  ])('defaultMaxParallelism(%i) = %i', (p, maxP) => {
    expect(defaultMaxParallelism(p)).toBe(maxP);
  });
});

describe('rescaleMoves', () => {
  it('moves exactly the key groups whose owner changes, for every (p, p′) up to 8 at maxP 128', () => {
    for (let p = 1; p <= 8; p++)
      for (let q = 1; q <= 8; q++) {
        const moved = new Map<number, [number, number]>();
        for (const m of rescaleMoves(p, q, 128))
          for (let kg = m.range.start; kg <= m.range.end; kg++) {
            expect(moved.has(kg)).toBe(false);
            moved.set(kg, [m.fromSubtask, m.toSubtask]);
          }
        for (let kg = 0; kg < 128; kg++) {
          const a = subtaskFor(kg, p, 128);
          const b = subtaskFor(kg, q, 128);
          if (a === b) expect(moved.has(kg)).toBe(false);
          else expect(moved.get(kg)).toEqual([a, b]);
        }
      }
  });

  it('moves nothing when parallelism stays', () => {
    expect(rescaleMoves(3, 3, 128)).toEqual([]);
  });

  it('doubling 1→2 at maxP 128 moves the upper half to subtask 1 in one run', () => {
    expect(rescaleMoves(1, 2, 128)).toEqual([{ range: { start: 64, end: 127 }, fromSubtask: 0, toSubtask: 1 }]);
  });
});
