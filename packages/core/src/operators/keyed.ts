import type { Rec } from '../codec.ts';
import { getField } from '../fields.ts';
import type { StatefulCounterSettings, SumSettings } from '../operatorCatalog.ts';
import type { OperatorContext, StreamOperator } from './types.ts';

function backendOf(ctx: OperatorContext) {
  if (!ctx.backend) throw new Error('a keyed operator needs a keyed state backend');
  return ctx.backend;
}

/** Running count per key; emits `{key, count}`. */
export function countOperator(ctx: OperatorContext): StreamOperator {
  const count = backendOf(ctx).valueState<number>('count');
  return {
    process(_rec, key, out) {
      const n = (count.value() ?? 0) + 1;
      count.update(n);
      out.emit({ key, count: n });
    },
  };
}

/** Running sum of a numeric field per key; emits `{key, sum}`. */
export function sumOperator(s: SumSettings, ctx: OperatorContext): StreamOperator {
  const sum = backendOf(ctx).reducingState<number>('sum', (a, b) => a + b);
  return {
    process(rec, key, out) {
      const v = getField(rec, s.field);
      if (typeof v !== 'number' || !Number.isFinite(v)) return ctx.deadLetter(rec, `sum: field '${s.field}' is not a number`);
      sum.add(v);
      out.emit({ key, sum: sum.get() });
    },
  };
}

/** A value as text: strings as they are, objects as JSON (bigints as digits, which JSON.stringify would throw on). */
function show(value: unknown): string {
  if (typeof value !== 'object' || value === null) return String(value);
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** The seed's keyed flatMap: counts per key in a value state and emits `Processed: <value>, Count: <n>`. */
export function statefulCounterOperator(s: StatefulCounterSettings, ctx: OperatorContext): StreamOperator {
  const counter = backendOf(ctx).valueState<number>('counter');
  return {
    process(rec: Rec, key, out) {
      const n = (counter.value() ?? 0) + 1;
      counter.update(n);
      const value = s.field ? getField(rec, s.field) : rec;
      out.emit({ key, count: n, message: `Processed: ${show(value)}, Count: ${n}` });
    },
  };
}
