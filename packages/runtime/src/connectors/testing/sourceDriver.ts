import type { Rec } from '@keyflow/core';
import { encodeSplit, loadSplit, type Source } from '../source.ts';

/** What a source emitted in a test: each record with its split. */
export interface Emitted {
  split: number;
  record: Rec;
}

/**
 * Emits from `source` as a subtask's loop would, until `done` holds for what came (or the deadline passes: then it
 * throws, saying how many came). Broker sources fetch in the background, so it waits between empty emits.
 */
export async function emitUntil(source: Source, done: (got: Emitted[]) => boolean, timeoutMs = 15_000, got: Emitted[] = []): Promise<Emitted[]> {
  const deadline = Date.now() + timeoutMs;
  const out = { emit: (split: number, record: Rec) => void got.push({ split, record }) };
  while (!done(got)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${got.length} records came`);
    const { produced } = source.emit(1000, out);
    if (produced === 0) await new Promise((r) => setTimeout(r, 10));
  }
  return got;
}

/** Emits from `source` until it emitted `n` records, no more (budgets of at most what is left). */
export async function emitExactly(source: Source, n: number, timeoutMs = 15_000): Promise<Emitted[]> {
  const deadline = Date.now() + timeoutMs;
  const got: Emitted[] = [];
  const out = { emit: (split: number, record: Rec) => void got.push({ split, record }) };
  while (got.length < n) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${got.length} of ${n} records came`);
    const { produced } = source.emit(n - got.length, out);
    if (produced === 0) await new Promise((r) => setTimeout(r, 10));
  }
  return got;
}

/** Each split's state as a checkpoint keeps it. */
export function checkpointSplits(source: Source): Map<number, Buffer> {
  return new Map([...source.offsets.keys()].map((split) => [split, encodeSplit(source, split)]));
}

/** Loads a checkpoint's split states into a new source, as a recovery does (only the splits it holds). */
export function restoreSplits(source: Source, states: Map<number, Buffer>): void {
  for (const split of source.splits) {
    const data = states.get(split);
    if (data) loadSplit(source, split, data, performance.now());
  }
}

/**
 * A live rescale of one source subtask, as the runtime does it: the new splits assigned, the gained splits'
 * states handed over (from `handed`), then settled.
 */
export function rescaleSource(source: Source, index: number, parallelism: number, handed: Map<number, Buffer>): void {
  const next = source.splitsFor(index, parallelism);
  const gained = next.filter((x) => !source.splits.includes(x));
  source.assign(next);
  for (const split of gained) {
    const data = handed.get(split);
    if (data) loadSplit(source, split, data, performance.now());
  }
  source.settle();
}
