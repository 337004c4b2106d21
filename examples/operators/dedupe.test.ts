import { OperatorHarness } from '@keyflow/sdk/testing';
import { describe, expect, it } from 'vitest';
import dedupe from './dedupe.ts';

const MIN = 60_000;

describe('dedupe', () => {
  it('passes first sightings unchanged and sends repeats within the TTL to duplicates, per key', () => {
    const h = OperatorHarness.create(dedupe, { settings: { ttl: '10m' }, keyField: 'user' });
    h.process({ user: 'a', id: 1 }, { timestamp: 0 });
    h.process({ user: 'a', id: 1, again: true }, { timestamp: 9 * MIN });
    h.process({ user: 'b', id: 1 }, { timestamp: 9 * MIN });
    h.process({ user: 'a', id: 2 }, { timestamp: 9 * MIN });
    expect(h.output()).toEqual([
      { record: { user: 'a', id: 1 }, timestamp: 0 },
      { record: { user: 'b', id: 1 }, timestamp: 9 * MIN },
      { record: { user: 'a', id: 2 }, timestamp: 9 * MIN },
    ]);
    expect(h.sideOutput('duplicates')).toEqual([{ record: { user: 'a', id: 1, again: true }, timestamp: 9 * MIN }]);
  });

  it('does what the README says it does', () => {
    const h = OperatorHarness.create(dedupe, { settings: { ttl: '10m' }, keyField: 'user' });
    h.process({ user: 'a', id: 1 }, { timestamp: 0 });
    h.process({ user: 'a', id: 1 }, { timestamp: 60_000 });
    expect(h.records()).toEqual([{ user: 'a', id: 1 }]);
    expect(h.sideOutput('duplicates')).toHaveLength(1);

    const restored = OperatorHarness.restore(dedupe, h.snapshot(), { keyField: 'user' });
    restored.processWatermark(600_000);
    expect(restored.keyCount()).toBe(0);
  });

  it('forgets an id once the watermark passes its TTL, and then holds no state for the key', () => {
    const h = OperatorHarness.create(dedupe, { settings: { ttl: '10m', idField: 'order.id' } });
    h.process({ order: { id: 'x' } }, { key: 'a', timestamp: 0 });
    expect(h.state('a').seen).toEqual(new Map([['x', 10 * MIN]]));
    expect(h.timers('a').event).toEqual([10 * MIN]);
    h.processWatermark(10 * MIN);
    expect(h.keyCount()).toBe(0);
    h.process({ order: { id: 'x' } }, { key: 'a', timestamp: 10 * MIN + 1 });
    expect(h.records()).toHaveLength(2);
    expect(h.sideOutput('duplicates')).toEqual([]);
  });

  it('remembers an id seen again after its TTL, before its timer fired, from that sighting on', () => {
    const h = OperatorHarness.create(dedupe, { settings: { ttl: '1m' } });
    h.process({ id: 'x' }, { key: 'k', timestamp: 0 });
    h.process({ id: 'x' }, { key: 'k', timestamp: 2 * MIN });
    h.processWatermark(MIN);
    expect(h.state('k').seen).toEqual(new Map([['x', 3 * MIN]]));
    h.process({ id: 'x' }, { key: 'k', timestamp: 2 * MIN + 5 });
    expect(h.records()).toHaveLength(2);
    expect(h.sideOutput('duplicates')).toHaveLength(1);
    h.endInput();
    expect(h.keyCount()).toBe(0);
  });

  it('runs on the wall clock with time: processing', () => {
    const h = OperatorHarness.create(dedupe, { settings: { ttl: '30s', time: 'processing' }, processingTime: 1000 });
    h.process({ id: 7 }, { key: 'k' });
    h.setProcessingTime(30_999);
    h.process({ id: 7 }, { key: 'k' });
    h.setProcessingTime(31_000);
    h.process({ id: 7 }, { key: 'k' });
    expect(h.records()).toEqual([{ id: 7 }, { id: 7 }]);
    expect(h.sideOutput('duplicates')).toHaveLength(1);
  });

  it('dead-letters a record without an id, or without an event time, saying why', () => {
    const h = OperatorHarness.create(dedupe);
    h.process({ name: 'no id' }, { key: 'k', timestamp: 1 });
    h.process({ id: 'x' }, { key: 'k' });
    expect(h.deadLetters()).toEqual([
      { record: { name: 'no id' }, reason: "dedupe: the record has no id in 'id'" },
      { record: { id: 'x' }, reason: 'dedupe: the record has no event time (give its source a timestamp field, or use time: processing)' },
    ]);
  });

  it('refuses a TTL that is no duration', () => {
    expect(() => OperatorHarness.create(dedupe, { settings: { ttl: 'ten minutes' } })).toThrow(
      "dedupe: settings do not parse: ttl: 'ten minutes' is not a duration",
    );
  });

  it('keeps what it remembers, and its expiry timers, across a restore and a rescale 1 → 2 → 1', () => {
    const keys = Array.from({ length: 16 }, (_, i) => `user-${i}`);
    const opts = { settings: { ttl: '1m' }, keyField: 'user' } as const;
    const h = OperatorHarness.create(dedupe, opts);
    for (const user of keys) h.process({ user, id: 1 }, { timestamp: 0 });
    const restored = OperatorHarness.restore(dedupe, h.snapshot(), opts);
    for (const user of keys) restored.process({ user, id: 1 }, { timestamp: 1 });
    expect(restored.sideOutput('duplicates')).toHaveLength(keys.length);

    const two = OperatorHarness.rescale(dedupe, [restored.snapshot()], 2, opts);
    for (const user of keys) two.find((s) => s.owns(user))!.process({ user, id: 1 }, { timestamp: 2 });
    expect(two.flatMap((s) => s.sideOutput('duplicates'))).toHaveLength(keys.length);
    expect(two.flatMap((s) => s.records())).toEqual([]);

    const [one] = OperatorHarness.rescale(
      dedupe,
      two.map((s) => s.snapshot()),
      1,
      opts,
    );
    one!.processWatermark(MIN);
    expect(one!.keyCount()).toBe(0);
    for (const user of keys) one!.process({ user, id: 1 }, { timestamp: MIN + 1 });
    expect(one!.records()).toHaveLength(keys.length);
  });
});
