import { javaHashCode, murmurHash, type Key } from './hashing.ts';

/** The largest maxParallelism (number of key groups) an operator may have, as in Flink. */
export const UPPER_BOUND_MAX_PARALLELISM = 32768;

/** An inclusive range of key groups; empty when `end < start`. */
export interface KeyGroupRange {
  start: number;
  end: number;
}

/** The key group a key belongs to: `murmurHash(hashCode(key)) % maxParallelism`. */
export function keyGroupFor(key: Key, maxParallelism: number): number {
  return murmurHash(javaHashCode(key)) % maxParallelism;
}

/** The contiguous key groups subtask `index` of `parallelism` owns. */
export function rangeFor(index: number, parallelism: number, maxParallelism: number): KeyGroupRange {
  return {
    start: Math.floor((index * maxParallelism + parallelism - 1) / parallelism),
    end: Math.floor(((index + 1) * maxParallelism - 1) / parallelism),
  };
}

/** The source splits subtask `index` of `parallelism` reads of `splits`: contiguous, like key groups. */
export function splitsFor(index: number, parallelism: number, splits: number): number[] {
  return keyGroupsOf(rangeFor(index, parallelism, splits));
}

/** The subtask that owns key group `keyGroup` at `parallelism`. */
export function subtaskFor(keyGroup: number, parallelism: number, maxParallelism: number): number {
  return Math.floor((keyGroup * parallelism) / maxParallelism);
}

/** The smallest power of two ≥ n (n ≥ 1). */
export function roundUpToPowerOfTwo(n: number): number {
  return n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n));
}

/** Flink's default maxParallelism for a first deploy at `parallelism`. */
export function defaultMaxParallelism(parallelism: number): number {
  return Math.min(Math.max(roundUpToPowerOfTwo(parallelism + Math.floor(parallelism / 2)), 128), UPPER_BOUND_MAX_PARALLELISM);
}

/** Every key group of a range, in order. */
export function keyGroupsOf(range: KeyGroupRange): number[] {
  const out: number[] = [];
  for (let kg = range.start; kg <= range.end; kg++) out.push(kg);
  return out;
}

/** One contiguous run of key groups that changes owner when parallelism goes from `from` to `to`. */
export interface KeyGroupMove {
  range: KeyGroupRange;
  fromSubtask: number;
  toSubtask: number;
}

/** The key groups that change owner in a rescale, as contiguous runs; groups that keep their owner are absent. */
export function rescaleMoves(from: number, to: number, maxParallelism: number): KeyGroupMove[] {
  const moves: KeyGroupMove[] = [];
  for (let kg = 0; kg < maxParallelism; kg++) {
    const a = subtaskFor(kg, from, maxParallelism);
    const b = subtaskFor(kg, to, maxParallelism);
    if (a === b) continue;
    const last = moves[moves.length - 1];
    if (last && last.fromSubtask === a && last.toSubtask === b && last.range.end === kg - 1) last.range.end = kg;
    else moves.push({ range: { start: kg, end: kg }, fromSubtask: a, toSubtask: b });
  }
  return moves;
}
