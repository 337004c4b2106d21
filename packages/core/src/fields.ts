import type { Rec } from './codec.ts';

/** A record field by name; `a.b` reaches into nested objects. */
export function getField(rec: Rec, field: string): unknown {
  if (!field.includes('.')) return rec[field];
  let v: unknown = rec;
  for (const part of field.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Rec)[part];
  }
  return v;
}
