import { describe, expect, it, vi } from 'vitest';
import { decodeBatch, decodeValue, encodeBatch, encodeValue } from './codec.ts';

const manyShapes = Array.from({ length: 100 }, (_, i) => ({ [`f${i}`]: i, [`g${i % 7}`]: `v${i}`, shared: i % 2 === 0 }));

const batches: [string, unknown[]][] = [
  ['an empty batch', []],
  [
    'strings',
    [
      { user: 'u1', note: '' },
      { user: 'ünïcødé ✓ 🚀', note: 'x'.repeat(10_000) },
    ],
  ],
  ['numbers', [{ n: 0, neg: -17, big: 2 ** 53 - 1, f: 1.5, tiny: 1e-300, huge: 1.7e308, nan: Number.NaN, inf: -Infinity }]],
  ['nested objects and arrays', [{ a: { b: { c: [1, { d: 'e' }, [2, 3]] } }, list: [], empty: {}, nil: null }]],
  ['bigints', [{ small: 5n, neg: -3n, long: 1234567890123n, beyond64: 2n ** 70n, negBeyond64: -(2n ** 65n), zero: 0n }]],
  ['booleans', [{ t: true, f: false }]],
  ['the same shape many times', Array.from({ length: 1000 }, (_, i) => ({ user: `u${i}`, amount: i, ts: 1_767_225_600_000 + i }))],
  ['many different shapes', manyShapes],
  ['non-record items', [1, 'two', [3], null]],
];

describe('encodeBatch / decodeBatch', () => {
  it.each(batches)('round-trips %s', (_name, records) => {
    expect(decodeBatch(encodeBatch(records))).toEqual(records);
  });

  it('round-trips every batch in one stream of entries, in order', () => {
    const encoded = batches.map(([, r]) => encodeBatch(r));
    encoded.forEach((bytes, i) => expect(decodeBatch(bytes)).toEqual(batches[i]![1]));
  });

  it('decodes in another process: entries are self-contained (a fresh codec module reads them)', async () => {
    const encoded = batches.map(([, r]) => encodeBatch(r));
    vi.resetModules();
    const fresh = await import('./codec.ts');
    for (let i = encoded.length - 1; i >= 0; i--) expect(fresh.decodeBatch(encoded[i]!)).toEqual(batches[i]![1]);
  });

  it('accepts a plain Uint8Array as well as a Buffer', () => {
    const bytes = new Uint8Array(encodeBatch([{ a: 1 }]));
    expect(decodeBatch(bytes)).toEqual([{ a: 1 }]);
  });

  it.each<[string, Uint8Array]>([
    ['no bytes', new Uint8Array()],
    ['a reserved byte', Uint8Array.of(0xc1)],
    ['text', new TextEncoder().encode('hello world')],
    ['JSON', new TextEncoder().encode('[1,2]')],
    ['a truncated array', Uint8Array.of(0x92, 0x01)],
    ['an array with trailing bytes', Uint8Array.of(0x93, 1, 2, 3, 4, 5)],
    ['a truncated real batch', encodeBatch([{ user: 'u1', amount: 5 }]).subarray(0, 6)],
  ])('throws a clear error on garbage bytes: %s', (_name, bytes) => {
    expect(() => decodeBatch(bytes)).toThrow(/^channel entry is not a record batch: (not MessagePack \(.+\)|it holds \w+, not an array)$/);
  });

  it.each<[string, unknown, string]>([
    ['a number', 1, 'number'],
    ['a string', 'records', 'string'],
    ['an object', { records: [] }, 'object'],
    ['null', null, 'null'],
  ])('throws a clear error on a payload that is %s, not an array', (_name, value, got) => {
    expect(() => decodeBatch(encodeValue(value))).toThrow(`channel entry is not a record batch: it holds ${got}, not an array`);
  });

  it('still decodes valid entries after rejecting garbage', () => {
    expect(() => decodeBatch(Uint8Array.of(0x92, 0xd4, 0x72))).toThrow();
    expect(decodeBatch(encodeBatch([{ ok: true }]))).toEqual([{ ok: true }]);
  });
});

describe('encodeValue / decodeValue', () => {
  it.each<[string, unknown]>([
    ['a number', 42],
    ['a string', 'offset'],
    ['an object', { split: 3, offset: 1234567890123, nested: { done: false } }],
    ['a bigint', 2n ** 64n],
    [
      'entries with mixed key types',
      [
        [1, 'a'],
        ['1', 'b'],
        [5n, 'c'],
        [true, 'd'],
      ],
    ],
  ])('round-trips %s', (_name, value) => {
    expect(decodeValue(encodeValue(value))).toEqual(value);
  });
});
