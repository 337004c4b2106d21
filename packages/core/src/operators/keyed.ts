import { getField } from '../fields.ts';
import { builtin } from './builtin.ts';
import { defineOperator, reducingState, valueState } from '../sdk/define.ts';

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
