import { OperatorHarness } from '@keyflow/sdk/testing';
import { describe, expect, it } from 'vitest';
import counter from './counter.ts';

describe('sdkCounter', () => {
  it('counts per key and says what it processed', () => {
    const h = OperatorHarness.create(counter, { settings: { field: 'item' }, keyField: 'user' });
    h.process({ user: 'alice', item: 'book' });
    h.process({ user: 'bob', item: 'pen' });
    h.process({ user: 'alice', item: 'lamp' });
    expect(h.records()).toEqual([
      { key: 'alice', count: 1, message: 'Processed: book, Count: 1' },
      { key: 'bob', count: 1, message: 'Processed: pen, Count: 1' },
      { key: 'alice', count: 2, message: 'Processed: lamp, Count: 2' },
    ]);
    expect(h.state('alice')).toEqual({ count: 2 });
  });

  it('shows the whole record when no field is set, bigints as digits', () => {
    const h = OperatorHarness.create(counter);
    h.process({ user: 'u', n: 12n }, { key: 'u' });
    expect(h.records()).toEqual([{ key: 'u', count: 1, message: 'Processed: {"user":"u","n":"12"}, Count: 1' }]);
  });

  it('refuses a field that is no field name', () => {
    expect(() => OperatorHarness.create(counter, { settings: { field: 'a b' } })).toThrow('sdkCounter: settings do not parse: field: a field name');
  });

  it('goes on counting after a restore, and after a rescale to 3 subtasks', () => {
    const keys = Array.from({ length: 20 }, (_, i) => `user-${i}`);
    const h = OperatorHarness.create(counter, { keyField: 'user' });
    for (const user of keys) h.process({ user });

    const restored = OperatorHarness.restore(counter, h.snapshot(), { keyField: 'user' });
    for (const user of keys) restored.process({ user });
    expect(restored.records().map((r) => r.count)).toEqual(keys.map(() => 2));

    const three = OperatorHarness.rescale(counter, [restored.snapshot()], 3, { keyField: 'user' });
    for (const user of keys) three.find((s) => s.owns(user))!.process({ user });
    expect(three.flatMap((s) => s.records()).map((r) => r.count)).toEqual(keys.map(() => 3));
    expect(three.map((s) => s.keyCount()).reduce((a, b) => a + b)).toBe(keys.length);
  });
});
