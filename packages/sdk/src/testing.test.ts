import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { defineOperator, listState, mapState, valueState, z, type Key } from './index.ts';
import { OperatorHarness, type HarnessSnapshot } from './testing.ts';

/** KEYFLOW_PROPERTY_RUNS=n runs more cases (default 100); KEYFLOW_PROPERTY_SEED=s replays a run. */
const RUNS = Number(process.env.KEYFLOW_PROPERTY_RUNS ?? 100);
const SEED = Number(process.env.KEYFLOW_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));
beforeAll(() => console.log(`harness properties: seed ${SEED}, ${RUNS} runs (replay with KEYFLOW_PROPERTY_SEED=${SEED})`));

/**
 * Does what each record says to the timers of its key (`{do: 'event' | 'processing' | 'deleteEvent' |
 * 'deleteProcessing', at}`) and counts records per key; each timer emits `{key, at, domain}`.
 */
const timerOp = defineOperator({
  kind: 'timerOp',
  title: 'Timers',
  description: 'Registers and deletes timers as records say',
  settings: z.object({}).strict(),
  inputs: 'keyed',
  state: { count: valueState<number>() },
  process(record, ctx) {
    ctx.state.count.update((ctx.state.count.value() ?? 0) + 1);
    const at = record.at as number;
    if (record.do === 'event') ctx.timers.registerEventTime(at);
    else if (record.do === 'processing') ctx.timers.registerProcessingTime(at);
    else if (record.do === 'deleteEvent') ctx.timers.deleteEventTime(at);
    else if (record.do === 'deleteProcessing') ctx.timers.deleteProcessingTime(at);
  },
  onTimer(at, ctx) {
    ctx.emit({ key: ctx.currentKey, at, domain: ctx.timeDomain });
  },
});

/** Counts per key, remembers each record's `v`, and sends odd `v`s to the side output `odd`; throws on `v: 'boom'`. */
const sideOp = defineOperator({
  kind: 'sideOp',
  title: 'Side',
  description: 'Splits records by parity',
  settings: z.object({ limit: z.number().int().min(1).default(10) }).strict(),
  inputs: 'keyed',
  outputs: ['odd'],
  state: { count: valueState<number>(), values: listState<unknown>(), byValue: mapState<string, number>() },
  process(record, ctx) {
    if (record.v === 'boom') throw new Error('boom');
    ctx.state.count.update((ctx.state.count.value() ?? 0) + 1);
    ctx.state.values.add(record.v);
    ctx.state.byValue.put(String(record.v), ctx.timestamp ?? -1);
    if (typeof record.v === 'number' && record.v % 2) ctx.emitTo('odd', record);
    else ctx.emit(record, { timestamp: 7 });
  },
});

describe('OperatorHarness: timers', () => {
  it('fires event-time timers in time order as the watermark rises, each with its key and time', () => {
    const h = OperatorHarness.create(timerOp);
    h.process({ do: 'event', at: 30 }, { key: 'a' });
    h.process({ do: 'event', at: 10 }, { key: 'b' });
    h.process({ do: 'event', at: 20 }, { key: 'a' });
    h.process({ do: 'event', at: 10 }, { key: 'a' });
    expect(h.timers('a')).toEqual({ event: [10, 20, 30], processing: [] });
    h.processWatermark(5);
    expect(h.output()).toEqual([]);
    h.processWatermark(20);
    expect(h.output()).toEqual([
      { record: { key: 'b', at: 10, domain: 'event' }, timestamp: 10 },
      { record: { key: 'a', at: 10, domain: 'event' }, timestamp: 10 },
      { record: { key: 'a', at: 20, domain: 'event' }, timestamp: 20 },
    ]);
    h.clearOutput();
    h.endInput();
    expect(h.records()).toEqual([{ key: 'a', at: 30, domain: 'event' }]);
    expect(h.watermark).toBe(Infinity);
    expect(h.timers('a')).toEqual({ event: [], processing: [] });
  });

  it('fires processing-time timers as the clock moves, without a timestamp; endInput fires the rest', () => {
    const h = OperatorHarness.create(timerOp, { processingTime: 100 });
    h.process({ do: 'processing', at: 150 }, { key: 'a' });
    h.process({ do: 'processing', at: 120 }, { key: 'b' });
    h.process({ do: 'processing', at: 500 }, { key: 'b' });
    h.processWatermark(1000);
    expect(h.output()).toEqual([]);
    h.setProcessingTime(150);
    expect(h.output()).toEqual([
      { record: { key: 'b', at: 120, domain: 'processing' }, timestamp: undefined },
      { record: { key: 'a', at: 150, domain: 'processing' }, timestamp: undefined },
    ]);
    expect(h.processingTime).toBe(150);
    h.clearOutput();
    h.endInput();
    expect(h.records()).toEqual([{ key: 'b', at: 500, domain: 'processing' }]);
  });

  it('deletes timers of the key in hand only', () => {
    const h = OperatorHarness.create(timerOp);
    h.process({ do: 'event', at: 10 }, { key: 'a' });
    h.process({ do: 'event', at: 10 }, { key: 'b' });
    h.process({ do: 'processing', at: 10 }, { key: 'a' });
    h.process({ do: 'deleteEvent', at: 10 }, { key: 'a' });
    h.process({ do: 'deleteProcessing', at: 10 }, { key: 'a' });
    h.processWatermark(10);
    h.setProcessingTime(10);
    expect(h.records()).toEqual([{ key: 'b', at: 10, domain: 'event' }]);
  });

  it('lets neither the watermark nor the clock go back', () => {
    const h = OperatorHarness.create(timerOp);
    h.processWatermark(10);
    h.processWatermark(10);
    expect(() => h.processWatermark(9)).toThrow('the watermark is 10: it only rises, not back to 9');
    h.setProcessingTime(5);
    expect(() => h.setProcessingTime(4)).toThrow('the clock is at 5: it only moves forward, not back to 4');
  });
});

describe('OperatorHarness: records', () => {
  it('emits with the record’s timestamp unless the operator sets one, and sends to side outputs', () => {
    const h = OperatorHarness.create(sideOp);
    h.process({ v: 2 }, { key: 'a', timestamp: 100 });
    h.process({ v: 3 }, { key: 'a', timestamp: 101 });
    expect(h.output()).toEqual([{ record: { v: 2 }, timestamp: 7 }]);
    expect(h.sideOutput('odd')).toEqual([{ record: { v: 3 }, timestamp: 101 }]);
    expect(() => h.sideOutput('even')).toThrow("'even' is not one of sideOp's outputs (odd)");
    expect(h.state('a')).toEqual({
      count: 2,
      values: [2, 3],
      byValue: new Map([
        ['2', 100],
        ['3', 101],
      ]),
    });
    expect(h.state('nobody')).toEqual({ count: undefined, values: [], byValue: new Map() });
  });

  it('reads the key from keyField as the runtime does, dead-lettering a record without one', () => {
    const h = OperatorHarness.create(sideOp, { keyField: 'user.id' });
    h.process({ user: { id: 'u1' }, v: 2 });
    h.process({ user: {}, v: 4 });
    expect(h.state('u1').count).toBe(1);
    expect(h.deadLetters()).toEqual([{ record: { user: {}, v: 4 }, reason: "record lacks the key field 'user.id'" }]);
    expect(() => OperatorHarness.create(sideOp).process({ v: 1 })).toThrow('sideOp is keyed: give process a key, or the harness a keyField');
  });

  it('dead-letters a record that makes process throw, and goes on', () => {
    const h = OperatorHarness.create(sideOp);
    h.process({ v: 'boom' }, { key: 'a' });
    h.process({ v: 2 }, { key: 'a' });
    expect(h.deadLetters()).toEqual([{ record: { v: 'boom' }, reason: 'sideOp threw: boom' }]);
    expect(h.records()).toEqual([{ v: 2 }]);
  });

  it('dead-letters {key, timer, domain} when onTimer throws', () => {
    const op = defineOperator({
      kind: 'badTimer',
      title: 'Bad timer',
      description: 'Throws in onTimer',
      settings: z.object({}),
      inputs: 'keyed',
      process: (_r, ctx) => ctx.timers.registerEventTime(5),
      onTimer: () => {
        throw new Error('no');
      },
    });
    const h = OperatorHarness.create(op);
    h.process({}, { key: 'k' });
    h.processWatermark(5);
    expect(h.deadLetters()).toEqual([{ record: { key: 'k', timer: 5, domain: 'event' }, reason: 'badTimer threw in onTimer: no' }]);
  });

  it('runs an operator without keyed input with no key, and has no state for it', () => {
    const upper = defineOperator({
      kind: 'upper',
      title: 'Upper',
      description: 'Upper-cases name',
      settings: z.object({}),
      inputs: 'any',
      process: (r, ctx) => ctx.emit({ name: String(r.name).toUpperCase() }),
    });
    const h = OperatorHarness.create(upper);
    h.process({ name: 'ada' });
    expect(h.records()).toEqual([{ name: 'ADA' }]);
    expect(h.snapshot().keyGroups.size).toBe(0);
    expect(() => h.state('x')).toThrow('upper has no keyed input, so no state per key');
  });

  it('passes the right input to a two-input operator, each keyed by its own field', () => {
    const join = defineOperator({
      kind: 'sides',
      title: 'Sides',
      description: 'Says which input a record came by',
      settings: z.object({}),
      inputs: 'keyed',
      twoInputs: true,
      process: (r, ctx) => ctx.emit({ key: ctx.currentKey, input: ctx.input }),
    });
    const h = OperatorHarness.create(join, { keyField: { left: 'id', right: 'auction' } });
    h.process({ id: 1 });
    h.process({ auction: 1 }, { input: 'right' });
    expect(h.records()).toEqual([
      { key: 1, input: 'left' },
      { key: 1, input: 'right' },
    ]);
    expect(() => OperatorHarness.create(sideOp).process({}, { key: 'a', input: 'right' })).toThrow(
      "sideOp has one input: input 'right' is for two-input operators",
    );
  });

  it('captures what the operator logs, with the subtask it runs as', () => {
    const op = defineOperator({
      kind: 'logs',
      title: 'Logs',
      description: 'Logs where it runs',
      settings: z.object({}),
      inputs: 'any',
      open: (ctx) => ctx.log.info('open', { index: ctx.subtask.index, parallelism: ctx.subtask.parallelism }),
      process: (_r, ctx) => ctx.log.warn('record'),
    });
    const h = OperatorHarness.create(op, { subtask: { index: 1, parallelism: 2 } });
    h.process({});
    expect(h.logs()).toEqual([
      { level: 'info', message: 'open', fields: { index: 1, parallelism: 2 } },
      { level: 'warn', message: 'record' },
    ]);
  });
});

describe('OperatorHarness: create', () => {
  it('fails when open throws, with the message', () => {
    const op = defineOperator({
      kind: 'badOpen',
      title: 'Bad open',
      description: 'Throws in open',
      settings: z.object({}),
      inputs: 'any',
      open: () => {
        throw new Error('no model file');
      },
      process: () => {},
    });
    expect(() => OperatorHarness.create(op)).toThrow('badOpen failed to open: no model file');
  });

  it('refuses settings that do not parse, naming the field', () => {
    expect(() => OperatorHarness.create(sideOp, { settings: { limit: 0 } })).toThrow(/sideOp: settings do not parse: limit: .*>=1/);
    expect(() => OperatorHarness.create(sideOp, { settings: { limt: 3 } as never })).toThrow(
      /sideOp: settings do not parse: \(settings\): Unrecognized key: "limt"/,
    );
  });

  it('refuses a subtask that cannot be', () => {
    expect(() => OperatorHarness.create(sideOp, { subtask: { index: 2, parallelism: 2 } })).toThrow('subtask index 2 is not one of 0…1');
    expect(() => OperatorHarness.create(sideOp, { maxParallelism: 4, subtask: { index: 0, parallelism: 5 } })).toThrow(
      'parallelism must be a whole number from 1 to maxParallelism (4), not 5',
    );
  });
});

describe('OperatorHarness: snapshots', () => {
  it('restores state and timers into a new harness, at the watermark and clock it had', () => {
    const h = OperatorHarness.create(timerOp, { processingTime: 50 });
    h.process({ do: 'event', at: 30 }, { key: 'a' });
    h.process({ do: 'event', at: 10 }, { key: 'a' });
    h.process({ do: 'processing', at: 60 }, { key: 'b' });
    h.processWatermark(10);
    const snap = h.snapshot();
    // What happens after the snapshot is not in it.
    h.process({ do: 'event', at: 40 }, { key: 'a' });

    const r = OperatorHarness.restore(timerOp, snap);
    expect(r.watermark).toBe(10);
    expect(r.processingTime).toBe(50);
    expect(r.state('a')).toEqual({ count: 2 });
    expect(r.timers('a')).toEqual({ event: [30], processing: [] });
    r.setProcessingTime(60);
    r.endInput();
    expect(r.records()).toEqual([
      { key: 'b', at: 60, domain: 'processing' },
      { key: 'a', at: 30, domain: 'event' },
    ]);
  });

  it('refuses a snapshot of another operator, or into a subtask that does not own its key groups', () => {
    const h = OperatorHarness.create(timerOp, { subtask: { index: 0, parallelism: 2 } });
    const key = ['a', 'b', 'c', 'd'].find((k) => h.owns(k))!;
    h.process({ do: 'event', at: 1 }, { key });
    const snap = h.snapshot();
    expect(() => OperatorHarness.restore(sideOp, snap)).toThrow('a snapshot of timerOp cannot be restored into sideOp');
    expect(() => OperatorHarness.restore(timerOp, snap, { subtask: { index: 1, parallelism: 2 } })).toThrow(/does not own: use rescale/);
  });

  it('refuses a record whose key group the subtask does not own', () => {
    const h = OperatorHarness.create(sideOp, { subtask: { index: 0, parallelism: 3 } });
    // 'hello' is in key group 35 of 128 (DESIGN §2): subtask 0 of 3 owns 0–42, subtask 1 owns 43–85.
    expect(h.owns('hello')).toBe(true);
    const other = OperatorHarness.create(sideOp, { subtask: { index: 1, parallelism: 3 } });
    expect(() => other.process({ v: 1 }, { key: 'hello' })).toThrow(
      /key hello is in key group 35, which subtask 1 of 3 does not own \(it owns 43–85\)/,
    );
  });

  it('rescales 2 → 3 → 1: each subtask gets exactly its key groups, with their timers, and nothing is lost or doubled', () => {
    const keys = Array.from({ length: 40 }, (_, i) => `user-${i}`);
    const two = [0, 1].map((index) => OperatorHarness.create(timerOp, { subtask: { index, parallelism: 2 } }));
    const owner = <H extends { owns(key: Key): boolean }>(hs: H[], key: Key) => hs.find((h) => h.owns(key))!;
    for (const [i, key] of keys.entries()) owner(two, key).process({ do: 'event', at: 100 + i }, { key });
    two[0]!.processWatermark(50);
    two[1]!.processWatermark(70);

    const three = OperatorHarness.rescale(timerOp, snapshotsOf(two), 3);
    expect(three.map((h) => h.watermark)).toEqual([50, 50, 50]);
    for (const key of keys) {
      expect(three.filter((h) => h.state(key).count !== undefined).map((h) => h.subtask.index)).toEqual([owner(three, key).subtask.index]);
      owner(three, key).process({ do: 'processing', at: 5 }, { key });
    }
    const one = OperatorHarness.rescale(timerOp, snapshotsOf(three), 1);
    expect(one).toHaveLength(1);
    for (const key of keys) expect(one[0]!.state(key)).toEqual({ count: 2 });
    one[0]!.endInput();
    expect(one[0]!.records()).toHaveLength(2 * keys.length);
    expect(one[0]!.keyCount()).toBe(keys.length);
  });

  it('refuses to rescale from fewer snapshots than the old subtasks, or from two of one subtask', () => {
    const two = [0, 1].map((index) => OperatorHarness.create(timerOp, { subtask: { index, parallelism: 2 } }));
    const [a, b] = snapshotsOf(two);
    expect(() => OperatorHarness.rescale(timerOp, [a!], 3)).toThrow(
      'a rescale needs one snapshot from each subtask of the old parallelism, or state is lost',
    );
    expect(() => OperatorHarness.rescale(timerOp, [a!, a!], 3)).toThrow('a rescale needs one snapshot from each subtask');
    expect(OperatorHarness.rescale(timerOp, [b!, a!], 3)).toHaveLength(3);
  });

  it('property: any sequence of rescales keeps every key’s count and fires every timer once', () => {
    const op = fc.record({ key: fc.integer({ min: 0, max: 30 }), at: fc.integer({ min: 0, max: 50 }) });
    const phase = fc.record({ parallelism: fc.integer({ min: 1, max: 6 }), records: fc.array(op, { maxLength: 25 }) });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.array(phase, { maxLength: 5 }), fc.constantFrom(8, 128), (p0, phases, maxParallelism) => {
        let hs = Array.from({ length: p0 }, (_, index) => OperatorHarness.create(timerOp, { maxParallelism, subtask: { index, parallelism: p0 } }));
        const counts = new Map<Key, number>();
        const timers = new Set<string>();
        for (const { parallelism, records } of phases) {
          for (const { key, at } of records) {
            const owners = hs.filter((h) => h.owns(key));
            expect(owners).toHaveLength(1);
            owners[0]!.process({ do: 'event', at }, { key });
            counts.set(key, (counts.get(key) ?? 0) + 1);
            timers.add(`${key}@${at}`);
          }
          hs = OperatorHarness.rescale(timerOp, snapshotsOf(hs), parallelism);
        }
        for (const [key, n] of counts) expect(hs.map((h) => h.state(key).count ?? 0)).toEqual(hs.map((h) => (h.owns(key) ? n : 0)));
        const fired = hs.flatMap((h) => {
          h.endInput();
          return h.records().map((r) => `${String(r.key)}@${String(r.at)}`);
        });
        expect(fired.sort()).toEqual([...timers].sort());
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });
});

function snapshotsOf(hs: readonly { snapshot(): HarnessSnapshot }[]): HarnessSnapshot[] {
  return hs.map((h) => h.snapshot());
}
