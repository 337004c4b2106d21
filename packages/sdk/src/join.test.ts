import { joinOperator, type Key } from '@keyflow/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OperatorHarness, type HarnessSnapshot } from './testing.ts';

// The built-in regular join on the engine's own binding, backend and timers: every left record of a key meets every
// right record of that key once, whatever the order, across snapshots and rescales; `retain` lets records go.

const SEED = Number(process.env.KEYFLOW_PROPERTY_SEED ?? Date.now() % 2 ** 31);
const RUNS = Number(process.env.KEYFLOW_PROPERTY_RUNS ?? 100);

const keyField = { left: 'seller', right: 'id' };

describe('join', () => {
  it('pairs each record with what the other side holds for its key, once, when the later of the two comes', () => {
    const h = OperatorHarness.create(joinOperator, { keyField });
    h.process({ id: 10, seller: 1 }, { input: 'left', timestamp: 100 });
    h.process({ id: 11, seller: 2 }, { input: 'left', timestamp: 110 });
    expect(h.records()).toEqual([]);
    h.process({ id: 1, name: 'Peter' }, { input: 'right', timestamp: 120 });
    h.process({ id: 12, seller: 1 }, { input: 'left', timestamp: 90 });
    expect(h.output()).toEqual([
      { record: { key: 1, left: { id: 10, seller: 1 }, right: { id: 1, name: 'Peter' } }, timestamp: 120 },
      { record: { key: 1, left: { id: 12, seller: 1 }, right: { id: 1, name: 'Peter' } }, timestamp: 120 },
    ]);
    expect(h.state(1)).toEqual({
      left: new Map([
        [100, [{ id: 10, seller: 1 }]],
        [90, [{ id: 12, seller: 1 }]],
      ]),
      right: new Map([[120, [{ id: 1, name: 'Peter' }]]]),
    });
  });

  it('with retain, lets a record go once the watermark is that far past its time; later partners do not find it', () => {
    const h = OperatorHarness.create(joinOperator, { keyField, settings: { retain: '5s' } });
    h.process({ id: 10, seller: 1 }, { input: 'left', timestamp: 1000 });
    h.processWatermark(5999);
    h.process({ id: 1 }, { input: 'right', timestamp: 6000 });
    expect(h.records()).toHaveLength(1);
    h.processWatermark(6000);
    expect(h.state(1).left ?? new Map()).toEqual(new Map());
    expect(h.state(1).right).toEqual(new Map([[6000, [{ id: 1 }]]]));
    h.process({ id: 11, seller: 1 }, { input: 'left', timestamp: 7000 });
    expect(h.records()).toHaveLength(2);
    h.processWatermark(11_000);
    expect(h.state(1).left).toEqual(new Map([[7000, [{ id: 11, seller: 1 }]]]));
    expect(h.state(1).right ?? new Map()).toEqual(new Map());
    h.processWatermark(12_000);
    expect(h.keyCount()).toBe(0);
  });

  it('with retain, dead-letters a record without event time; without retain, joins it', () => {
    const timed = OperatorHarness.create(joinOperator, { keyField, settings: { retain: '1m' } });
    timed.process({ id: 10, seller: 1 }, { input: 'left' });
    expect(timed.deadLetters()).toEqual([
      { record: { id: 10, seller: 1 }, reason: 'join: the record has no event time (give its source a timestamp field, or use ingestion time)' },
    ]);
    const untimed = OperatorHarness.create(joinOperator, { keyField });
    untimed.process({ id: 10, seller: 1 }, { input: 'left' });
    untimed.process({ id: 1 }, { input: 'right' });
    expect(untimed.output()).toEqual([{ record: { key: 1, left: { id: 10, seller: 1 }, right: { id: 1 } }, timestamp: undefined }]);
  });

  it('refuses a retain that is no duration', () => {
    expect(() => OperatorHarness.create(joinOperator, { keyField, settings: { retain: 'soon' } })).toThrow(/settings do not parse: retain/);
  });

  it(`property: across snapshots and rescales every same-key pair comes out exactly once (seed ${SEED})`, () => {
    console.log(`join property: seed ${SEED}, ${RUNS} runs (replay with KEYFLOW_PROPERTY_SEED=${SEED})`);
    const rec = fc.record({ side: fc.constantFrom('left' as const, 'right' as const), key: fc.integer({ min: 0, max: 12 }) });
    const phase = fc.record({ parallelism: fc.integer({ min: 1, max: 4 }), records: fc.array(rec, { maxLength: 20 }) });
    fc.assert(
      fc.property(fc.array(phase, { minLength: 1, maxLength: 5 }), (phases) => {
        let hs = [OperatorHarness.create(joinOperator, { keyField, maxParallelism: 16 })];
        const seen: { side: 'left' | 'right'; key: Key; n: number }[] = [];
        const out: string[] = [];
        let n = 0;
        for (const { parallelism, records } of phases) {
          for (const { side, key } of records) {
            const h = hs.find((x) => x.owns(key))!;
            const before = h.records().length;
            h.process(side === 'left' ? { seller: key, n } : { id: key, n }, { key, input: side, timestamp: n });
            out.push(
              ...h
                .records()
                .slice(before)
                .map((r) => `${String(r.key)}:${(r.left as { n: number }).n}-${(r.right as { n: number }).n}`),
            );
            seen.push({ side, key, n: n++ });
          }
          hs = OperatorHarness.rescale(joinOperator, snapshotsOf(hs), parallelism);
        }
        const expected = seen
          .filter((l) => l.side === 'left')
          .flatMap((l) => seen.filter((r) => r.side === 'right' && r.key === l.key).map((r) => `${String(l.key)}:${l.n}-${r.n}`));
        expect(out.sort()).toEqual(expected.sort());
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });
});

function snapshotsOf(hs: readonly { snapshot(): HarnessSnapshot }[]): HarnessSnapshot[] {
  return hs.map((h) => h.snapshot());
}
