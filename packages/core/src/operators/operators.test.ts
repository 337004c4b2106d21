import { describe, expect, it } from 'vitest';
import type { Rec } from '../codec.ts';
import type { Key } from '../hashing.ts';
import { createOperator, guarded } from './index.ts';
import { KeyedStateBackend } from '../stateBackend.ts';
import { filterSettings } from '../operatorCatalog.ts';

/** One operator over its own backend: feeds records (setting the current key first, as the runtime does). */
function harness(type: string, settings: Record<string, unknown> = {}, backend = new KeyedStateBackend(128)) {
  const out: Rec[] = [];
  const dead: { record: unknown; reason: string }[] = [];
  const op = createOperator({ id: 'op', type, parallelism: 1, settings }, { backend, deadLetter: (record, reason) => dead.push({ record, reason }) });
  const feed = (rec: Rec, key?: Key) => {
    if (key !== undefined) backend.setCurrentKey(key);
    op.process(rec, key, { emit: (r) => out.push(r) });
  };
  return { feed, out, dead, backend };
}

describe('keyed operators', () => {
  it('count: a running count per key', () => {
    const h = harness('count');
    for (const k of ['a', 'b', 'a', 'a', 'b', 7]) h.feed({ user: k }, k);
    expect(h.out).toEqual([
      { key: 'a', count: 1 },
      { key: 'b', count: 1 },
      { key: 'a', count: 2 },
      { key: 'a', count: 3 },
      { key: 'b', count: 2 },
      { key: 7, count: 1 },
    ]);
  });

  it('count: continues from restored state, as after a rescale', () => {
    const before = harness('count');
    for (const k of ['a', 'a', 'b']) before.feed({}, k);
    const all = Array.from({ length: 128 }, (_, kg) => kg);
    const backend = new KeyedStateBackend(128);
    for (const [kg, bytes] of before.backend.snapshot(all)) backend.restore(kg, bytes);
    const after = harness('count', {}, backend);
    after.feed({}, 'a');
    after.feed({}, 'b');
    expect(after.out).toEqual([
      { key: 'a', count: 3 },
      { key: 'b', count: 2 },
    ]);
  });

  it('sum: a running sum per key; non-numbers go to the dead letter output with the reason', () => {
    const h = harness('sum', { field: 'amount' });
    const bad: Rec[] = [{ amount: '5' }, {}, { amount: Number.NaN }, { amount: Infinity }, { amount: null }, { amount: 5n }];
    h.feed({ amount: 5 }, 'a');
    h.feed({ amount: 2.5 }, 'b');
    for (const r of bad) h.feed(r, 'a');
    h.feed({ amount: -1 }, 'a');
    expect(h.out).toEqual([
      { key: 'a', sum: 5 },
      { key: 'b', sum: 2.5 },
      { key: 'a', sum: 4 },
    ]);
    expect(h.dead).toEqual(bad.map((record) => ({ record, reason: "sum: field 'amount' is not a number" })));
  });

  it('sum: reaches into nested fields', () => {
    const h = harness('sum', { field: 'order.total' });
    h.feed({ order: { total: 3 } }, 'a');
    h.feed({ order: { total: 4 } }, 'a');
    expect(h.out).toEqual([
      { key: 'a', sum: 3 },
      { key: 'a', sum: 7 },
    ]);
  });

  it.each<[string, Record<string, unknown>, [Rec, Key][], string[]]>([
    [
      'a field',
      { field: 'user' },
      [
        [{ user: 'u1' }, 'u1'],
        [{ user: 'u2' }, 'u2'],
        [{ user: 'u1' }, 'u1'],
      ],
      ['Processed: u1, Count: 1', 'Processed: u2, Count: 1', 'Processed: u1, Count: 2'],
    ],
    [
      'the whole record',
      {},
      [
        [{ user: 'u1', amount: 5 }, 'u1'],
        [{ user: 'u1', amount: 6 }, 'u1'],
      ],
      ['Processed: {"user":"u1","amount":5}, Count: 1', 'Processed: {"user":"u1","amount":6}, Count: 2'],
    ],
    ['a numeric field', { field: 'amount' }, [[{ amount: 42 }, 'k']], ['Processed: 42, Count: 1']],
    ['a missing field', { field: 'amount' }, [[{}, 'k']], ['Processed: undefined, Count: 1']],
    ['an object field', { field: 'order' }, [[{ order: { id: 1 } }, 'k']], ['Processed: {"id":1}, Count: 1']],
    ['a record with a bigint', {}, [[{ id: 12345678901234567890n }, 'k']], ['Processed: {"id":"12345678901234567890"}, Count: 1']],
    ['a bigint field', { field: 'id' }, [[{ id: 5n }, 5n]], ['Processed: 5, Count: 1']],
  ])("statefulCounter with %s emits 'Processed: <value>, Count: <n>'", (_name, settings, input, messages) => {
    const h = harness('statefulCounter', settings);
    for (const [rec, key] of input) h.feed(rec, key);
    expect(h.out.map((r) => r.message)).toEqual(messages);
    expect(h.out.map((r) => [r.key, r.count])).toEqual(input.map(([, key], i) => [key, input.slice(0, i + 1).filter(([, k]) => k === key).length]));
    expect(h.dead).toEqual([]);
  });

  it.each(['count', 'sum', 'statefulCounter'])('%s refuses to run without a state backend', (type) => {
    expect(() =>
      createOperator({ id: 'op', type, parallelism: 1, settings: type === 'sum' ? { field: 'amount' } : {} }, { deadLetter: () => {} }),
    ).toThrow('a keyed operator needs a keyed state backend');
  });
});

describe('filter', () => {
  const rec: Rec = { user: 'u7', amount: 50, tags: ['vip', 'new'], nested: { country: 'NL' }, none: null, limits: { low: 10, high: 50, zero: 0 } };

  it.each<[Record<string, unknown>, boolean]>([
    [{ field: 'user', op: 'eq', value: 'u7' }, true],
    [{ field: 'user', value: 'u7' }, true],
    [{ field: 'user', op: 'eq', value: 'u8' }, false],
    [{ field: 'amount', op: 'eq', value: '50' }, false],
    [{ field: 'user', op: 'neq', value: 'u8' }, true],
    [{ field: 'user', op: 'neq', value: 'u7' }, false],
    [{ field: 'amount', op: 'gt', value: 49 }, true],
    [{ field: 'amount', op: 'gt', value: 50 }, false],
    [{ field: 'amount', op: 'gte', value: 50 }, true],
    [{ field: 'amount', op: 'lt', value: 50 }, false],
    [{ field: 'amount', op: 'lt', value: 51 }, true],
    [{ field: 'amount', op: 'lte', value: 50 }, true],
    [{ field: 'user', op: 'contains', value: '7' }, true],
    [{ field: 'user', op: 'contains', value: 'x' }, false],
    [{ field: 'tags', op: 'contains', value: 'vip' }, true],
    [{ field: 'tags', op: 'contains', value: 'old' }, false],
    [{ field: 'amount', op: 'contains', value: 5 }, false],
    [{ field: 'user', op: 'exists' }, true],
    [{ field: 'none', op: 'exists' }, false],
    [{ field: 'missing', op: 'exists' }, false],
    [{ field: 'nested.country', op: 'eq', value: 'NL' }, true],
    [{ field: 'nested.city', op: 'exists' }, false],
    [{ field: 'nested.country', op: 'in', value: 'OR, NL,CA' }, true],
    [{ field: 'nested.country', op: 'in', value: 'OR,ID' }, false],
    [{ field: 'amount', op: 'in', value: '10,50' }, true],
    [{ field: 'tags', op: 'in', value: 'vip,new' }, false],
    [{ field: 'missing', op: 'in', value: 'undefined' }, false],
    [{ field: 'amount', op: 'multipleOf', value: 25 }, true],
    [{ field: 'amount', op: 'multipleOf', value: -10 }, true],
    [{ field: 'amount', op: 'multipleOf', value: 123 }, false],
    [{ field: 'user', op: 'multipleOf', value: 1 }, false],
    [{ field: 'amount', op: 'gte', valueField: 'limits.low' }, true],
    [{ field: 'amount', op: 'lte', valueField: 'limits.high' }, true],
    [{ field: 'amount', op: 'gt', valueField: 'limits.high' }, false],
    [{ field: 'amount', op: 'eq', valueField: 'limits.missing' }, false],
    [{ field: 'amount', op: 'multipleOf', valueField: 'limits.low' }, true],
    [{ field: 'amount', op: 'multipleOf', valueField: 'limits.zero' }, false],
  ])('%j keeps the record: %s', (settings, kept) => {
    const h = harness('filter', settings);
    h.feed(rec);
    expect(h.out).toEqual(kept ? [rec] : []);
    expect(h.dead).toEqual([]);
  });
});

describe('filter settings', () => {
  it.each<[Record<string, unknown>, string]>([
    [{ field: 'a', op: 'multipleOf', value: 0 }, 'multipleOf needs a whole number other than 0'],
    [{ field: 'a', op: 'multipleOf', value: 1.5 }, 'multipleOf needs a whole number other than 0'],
    [{ field: 'a', op: 'multipleOf', value: '3' }, 'multipleOf needs a whole number other than 0'],
    [{ field: 'a', op: 'in', value: 3 }, 'in needs a comma-separated list of values'],
    [{ field: 'a', op: 'in', value: ' , ' }, 'in needs a comma-separated list of values'],
    [{ field: 'a', op: 'gt' }, 'a value (or a field to compare with) is needed for this comparison'],
    [{ field: 'a', op: 'gt', value: 1, valueField: 'b' }, 'give a value or a field to compare with, not both'],
    [{ field: 'a', op: 'in', valueField: 'b' }, 'in and exists take no field to compare with'],
  ])('%j is refused: %s', (settings, message) => {
    const r = filterSettings.safeParse(settings);
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.message)).toContain(message);
  });
});

describe('map', () => {
  const rec: Rec = { user: 'u1', amount: 10, item: 'i3', ts: 100 };

  it.each<[string, unknown[], Rec]>([
    ['pick', [{ op: 'pick', fields: ['user', 'amount', 'absent'] }], { user: 'u1', amount: 10 }],
    ['pick ignores inherited names', [{ op: 'pick', fields: ['user', 'constructor', 'toString'] }], { user: 'u1' }],
    ['drop', [{ op: 'drop', fields: ['item', 'ts', 'absent'] }], { user: 'u1', amount: 10 }],
    ['rename', [{ op: 'rename', from: 'user', to: 'key' }], { key: 'u1', amount: 10, item: 'i3', ts: 100 }],
    ['rename of an absent field does nothing', [{ op: 'rename', from: 'absent', to: 'x' }], rec],
    ['rename of an inherited name does nothing', [{ op: 'rename', from: 'constructor', to: 'x' }], rec],
    ['set', [{ op: 'set', field: 'source', value: 'gen' }], { ...rec, source: 'gen' }],
    ['set overwrites, null included', [{ op: 'set', field: 'item', value: null }], { ...rec, item: null }],
    ['scale', [{ op: 'scale', field: 'amount', factor: 2.5 }], { ...rec, amount: 25 }],
    [
      'steps in order',
      [
        { op: 'scale', field: 'amount', factor: 100 },
        { op: 'rename', from: 'amount', to: 'cents' },
        { op: 'pick', fields: ['user', 'cents'] },
        { op: 'set', field: 'currency', value: 'EUR' },
      ],
      { user: 'u1', cents: 1000, currency: 'EUR' },
    ],
  ])('%s', (_name, steps, expected) => {
    const h = harness('map', { steps });
    const input = structuredClone(rec);
    h.feed(input);
    expect(h.out).toEqual([expected]);
    expect(input).toEqual(rec);
    expect(h.dead).toEqual([]);
  });

  it.each<[string, Rec]>([
    ['a string', { amount: '10' }],
    ['a missing field', {}],
    ['null', { amount: null }],
  ])('scale of %s sends the original record to the dead letter output', (_name, input) => {
    const h = harness('map', {
      steps: [
        { op: 'set', field: 'seen', value: true },
        { op: 'scale', field: 'amount', factor: 2 },
      ],
    });
    h.feed(input);
    expect(h.out).toEqual([]);
    expect(h.dead).toEqual([{ record: input, reason: "map: field 'amount' is not a number" }]);
  });
});

describe('createOperator', () => {
  it.each(['generator', 'log', 'postgres', 'teleport'])("refuses '%s', which is not a transform or keyed operator", (type) => {
    expect(() => createOperator({ id: 'op', type, parallelism: 1, settings: {} }, { deadLetter: () => {} })).toThrow(
      `operator type '${type}' is not a transform or keyed operator`,
    );
  });

  it.each<[string, Record<string, unknown>]>([
    ['filter', { field: 'user', op: 'gt' }],
    ['map', { steps: [] }],
    ['count', { extra: 1 }],
    ['sum', {}],
  ])('refuses invalid %s settings', (type, settings) => {
    const ctx = { backend: new KeyedStateBackend(128), deadLetter: () => {} };
    expect(() => createOperator({ id: 'op', type, parallelism: 1, settings }, ctx)).toThrow();
  });
});

describe('an operator that throws', () => {
  it('dead-letters the record with the reason and goes on with the next', () => {
    const dead: { record: unknown; reason: string }[] = [];
    const out: Rec[] = [];
    const op = guarded(
      'map',
      { process: (r, _k, o) => (r.bad ? (null as unknown as Rec).x : o.emit(r)) as void },
      { deadLetter: (record, reason) => dead.push({ record, reason }) },
    );
    const emit = { emit: (r: Rec) => out.push(r) };
    for (const r of [{ n: 1 }, { n: 2, bad: true }, { n: 3 }]) op.process(r, undefined, emit);
    expect(out).toEqual([{ n: 1 }, { n: 3 }]);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.record).toEqual({ n: 2, bad: true });
    expect(dead[0]!.reason).toMatch(/^map threw: .*null/);
  });

  it('does not take what its downstream throws for its own failure', () => {
    const dead: unknown[] = [];
    const op = guarded('count', { process: (r, _k, o) => o.emit(r) }, { deadLetter: (r) => dead.push(r) });
    const boom = new Error('downstream failed');
    expect(() =>
      op.process({ n: 1 }, undefined, {
        emit: () => {
          throw boom;
        },
      }),
    ).toThrow(boom);
    expect(dead).toEqual([]);
  });
});
