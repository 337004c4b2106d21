/**
 * Undo and redo over snapshots of a document. `present` may run ahead of the last committed snapshot (a node
 * being dragged, a selection): only `commit` makes an undo step, and commits that share a `coalesce` key in a
 * row (typing into one field) make one step together.
 */
export interface History<T> {
  past: T[];
  /** The last committed snapshot; `present` becomes it again on undo of a transient change. */
  base: T;
  present: T;
  future: T[];
  lastKey?: string;
}

const LIMIT = 100;

export function startHistory<T>(doc: T): History<T> {
  return { past: [], base: doc, present: doc, future: [] };
}

/** A change that is not an undo step of its own (selection, a drag in progress, measured sizes). */
export function transient<T>(h: History<T>, present: T): History<T> {
  return present === h.present ? h : { ...h, present };
}

/** A change that is an undo step; with the same `coalesce` key as the previous commit, it joins that step. */
export function commit<T>(h: History<T>, present: T, coalesce?: string): History<T> {
  if (coalesce !== undefined && coalesce === h.lastKey) return { ...h, base: present, present, future: [] };
  return { past: [...h.past, h.base].slice(-LIMIT), base: present, present, future: [], lastKey: coalesce };
}

export const canUndo = <T>(h: History<T>) => h.past.length > 0;
export const canRedo = <T>(h: History<T>) => h.future.length > 0;

export function undo<T>(h: History<T>): History<T> {
  const previous = h.past[h.past.length - 1];
  if (previous === undefined) return h;
  return { past: h.past.slice(0, -1), base: previous, present: previous, future: [h.present, ...h.future] };
}

export function redo<T>(h: History<T>): History<T> {
  const [next, ...rest] = h.future;
  if (next === undefined) return h;
  return { past: [...h.past, h.present].slice(-LIMIT), base: next, present: next, future: rest };
}
