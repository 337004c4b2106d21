import { encodeValue, type Rec } from '../codec.ts';
import { getField } from '../fields.ts';
import type { Key } from '../hashing.ts';
import type { AggregateSettings } from '../operatorCatalog.ts';
import { Aggregator, parseAggregates, type Accumulator } from '../windows.ts';
import { builtin } from './builtin.ts';
import { defineOperator, mapState, reducingState, valueState } from '../sdk/define.ts';

/** Running count per key; emits `{key, count}`. */
export const countOperator = defineOperator({
  ...builtin('count'),
  inputs: 'keyed',
  state: { count: valueState<number>() },
  process(_rec, ctx) {
    const n = (ctx.state.count.value() ?? 0) + 1;
    ctx.state.count.update(n);
    ctx.emit({ key: ctx.currentKey, count: n });
  },
});

/** Running sum of a numeric field per key; emits `{key, sum}`. */
export const sumOperator = defineOperator({
  ...builtin('sum'),
  inputs: 'keyed',
  state: { sum: reducingState<number>((a, b) => a + b) },
  process(rec, ctx) {
    const field = ctx.settings.field;
    const v = getField(rec, field);
    if (typeof v !== 'number' || !Number.isFinite(v)) return ctx.deadLetter(rec, `sum: field '${field}' is not a number`);
    ctx.state.sum.add(v);
    ctx.emit({ key: ctx.currentKey, sum: ctx.state.sum.get() });
  },
});

/** A value as text: strings as they are, objects as JSON (bigints as digits, which JSON.stringify would throw on). */
function show(value: unknown): string {
  if (typeof value !== 'object' || value === null) return String(value);
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** The seed's keyed flatMap: counts per key in a value state and emits `Processed: <value>, Count: <n>`. */
export const statefulCounterOperator = defineOperator({
  ...builtin('statefulCounter'),
  inputs: 'keyed',
  state: { counter: valueState<number>() },
  process(rec, ctx) {
    const n = (ctx.state.counter.value() ?? 0) + 1;
    ctx.state.counter.update(n);
    const value = ctx.settings.field ? getField(rec, ctx.settings.field) : rec;
    ctx.emit({ key: ctx.currentKey, count: n, message: `Processed: ${show(value)}, Count: ${n}` });
  },
});

/** An aggregate operator's aggregates, parsed once per subtask (settings never change while it runs). */
const aggregators = new WeakMap<AggregateSettings, Aggregator>();
function aggregatorOf(s: AggregateSettings): Aggregator {
  let agg = aggregators.get(s);
  if (!agg) {
    const parsed = parseAggregates(s.aggregates);
    if (!parsed.ok) throw new Error(parsed.message);
    aggregators.set(s, (agg = new Aggregator(parsed.aggregates, 'aggregate')));
  }
  return agg;
}

/**
 * Whether two results of an aggregate say the same: numbers equal, and a maxBy's or minBy's record the same object or
 * the same fields (a restored accumulator holds a copy of the record its latest records hold).
 */
function sameResult(a: Rec, b: Rec): boolean {
  for (const k in a) {
    const [x, y] = [a[k], b[k]];
    if (x === y) continue;
    if (x === null || y === null || typeof x !== 'object' || typeof y !== 'object' || !encodeValue(x).equals(encodeValue(y))) return false;
  }
  return true;
}

/**
 * Running aggregates per key with no window (a grouped aggregate, as Flink SQL's GROUP BY on a stream): every record
 * updates its key's accumulator and emits `{key, ...aggregates}` when they changed (as Flink's group aggregate, it
 * says nothing when a record leaves them as they were: a bid below the highest, a record replaced by its equal).
 * With `upsertKey` the input is a changelog: a record replaces the key's last record with the same value of that
 * field, so the aggregates cover the latest record per id (Flink's retraction). Count, sum and avg take the replaced
 * record's values back out (only they are kept per id); min, max, maxBy and minBy are worked out again over the key's
 * latest records.
 */
export const aggregateOperator = defineOperator({
  ...builtin('aggregate'),
  inputs: 'keyed',
  state: { acc: valueState<Accumulator>(), latest: mapState<Key, [values: number[], record?: Rec]>() },
  open(ctx) {
    aggregatorOf(ctx.settings);
  },
  process(rec, ctx) {
    const agg = aggregatorOf(ctx.settings);
    const values = agg.values(rec);
    if (typeof values === 'string') return ctx.deadLetter(rec, values);
    const upsertKey = ctx.settings.upsertKey;
    const held = ctx.state.acc.value();
    const before = held && agg.result(held);
    let acc = held ?? agg.create();
    if (upsertKey === undefined) agg.add(acc, values, rec);
    else {
      const id = getField(rec, upsertKey);
      if (typeof id !== 'string' && typeof id !== 'number') return ctx.deadLetter(rec, `aggregate: field '${upsertKey}' is not a string or a number`);
      const replaced = ctx.state.latest.get(id);
      if (agg.retractable) {
        ctx.state.latest.put(id, [values]);
        if (replaced) agg.retract(acc, replaced[0]);
        agg.add(acc, values, rec);
      } else {
        ctx.state.latest.put(id, [values, rec]);
        acc = agg.create();
        for (const [, [v, r]] of ctx.state.latest.entries()) agg.add(acc, v, r!);
      }
    }
    ctx.state.acc.update(acc);
    const after = agg.result(acc);
    if (before && sameResult(before, after)) return;
    ctx.emit({ key: ctx.currentKey, ...after });
  },
});
