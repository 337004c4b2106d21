import { defineOperator, fieldName, getField, valueState, z } from '@keyflow/sdk';

/** A value as text: strings as they are, objects as JSON (bigints as digits, which JSON.stringify would throw on). */
function show(value: unknown): string {
  if (typeof value !== 'object' || value === null) return String(value);
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/**
 * The seed's keyed flatMap on the SDK, a user's copy of the built-in `statefulCounter`: counts records per key in a
 * value state and emits `{key, count, message: 'Processed: <value>, Count: <n>'}`.
 */
export default defineOperator({
  kind: 'sdkCounter',
  title: 'Counter (SDK)',
  description: "Counts records per key; emits {key, count, message: 'Processed: <value>, Count: <n>'}",
  settings: z
    .object({
      field: fieldName.optional().describe('Field shown as the value; empty = the whole record'),
    })
    .strict(),
  inputs: 'keyed',
  state: { count: valueState<number>() },
  outputFields: () => ['key', 'count', 'message'],
  process(record, ctx) {
    const n = (ctx.state.count.value() ?? 0) + 1;
    ctx.state.count.update(n);
    const value = ctx.settings.field ? getField(record, ctx.settings.field) : record;
    ctx.emit({ key: ctx.currentKey, count: n, message: `Processed: ${show(value)}, Count: ${n}` });
  },
});
