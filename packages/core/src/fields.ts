import type { Rec } from './codec.ts';

/** Dotted field names split into their parts once (names come from settings: few, and used for every record). */
const paths = new Map<string, readonly string[]>();
const MAX_PATHS = 10_000;

/** A record field by name; `a.b` reaches into nested objects. */
export function getField(rec: Rec, field: string): unknown {
  if (!field.includes('.')) return rec[field];
  let parts = paths.get(field);
  if (!parts) {
    parts = field.split('.');
    if (paths.size < MAX_PATHS) paths.set(field, parts);
  }
  let v: unknown = rec;
  for (const part of parts) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Rec)[part];
  }
  return v;
}
