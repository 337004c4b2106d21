import type { Rec } from '../codec.ts';
import { getField } from '../fields.ts';
import type { FilterSettings } from '../operatorCatalog.ts';
import { builtin } from './builtin.ts';
import { defineOperator } from '../sdk/define.ts';

/** An `in` filter's list, split once per subtask (settings never change while it runs). */
const lists = new WeakMap<FilterSettings, Set<string>>();
function listOf(s: FilterSettings): Set<string> {
  let set = lists.get(s);
  if (!set)
    lists.set(
      s,
      (set = new Set(
        String(s.value)
          .split(',')
          .map((x) => x.trim()),
      )),
    );
  return set;
}

function matches(s: FilterSettings, a: unknown, b: unknown): boolean {
  switch (s.op) {
    case 'in':
      return (typeof a === 'string' || typeof a === 'number' || typeof a === 'boolean') && listOf(s).has(String(a));
    case 'multipleOf':
      return typeof a === 'number' && typeof b === 'number' && b !== 0 && a % b === 0;
    case 'exists':
      return a !== undefined && a !== null;
    case 'eq':
      return a === b;
    case 'neq':
      return a !== b;
    case 'contains':
      return typeof a === 'string' && typeof b === 'string' ? a.includes(b) : Array.isArray(a) && a.includes(b);
    case 'gt':
      return (a as number) > (b as number);
    case 'gte':
      return (a as number) >= (b as number);
    case 'lt':
      return (a as number) < (b as number);
    case 'lte':
      return (a as number) <= (b as number);
  }
}

export const filterOperator = defineOperator({
  ...builtin('filter'),
  inputs: 'any',
  process(rec, ctx) {
    const s = ctx.settings;
    if (matches(s, getField(rec, s.field), s.valueField === undefined ? s.value : getField(rec, s.valueField))) ctx.emit(rec);
  },
});

export const mapOperator = defineOperator({
  ...builtin('map'),
  inputs: 'any',
  process(rec, ctx) {
    let r: Rec = { ...rec };
    for (const step of ctx.settings.steps) {
      switch (step.op) {
        case 'pick':
          r = Object.fromEntries(step.fields.filter((f) => Object.hasOwn(r, f)).map((f) => [f, r[f]]));
          break;
        case 'drop':
          for (const f of step.fields) delete r[f];
          break;
        case 'rename':
          if (Object.hasOwn(r, step.from)) {
            r[step.to] = r[step.from];
            delete r[step.from];
          }
          break;
        case 'set':
          r[step.field] = step.value;
          break;
        case 'scale': {
          const v: unknown = r[step.field];
          if (typeof v !== 'number') return ctx.deadLetter(rec, `map: field '${step.field}' is not a number`);
          r[step.field] = v * step.factor;
          break;
        }
      }
    }
    ctx.emit(r);
  },
});
