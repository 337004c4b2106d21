import type { Partitioning } from './graph.ts';
import type { Key } from './hashing.ts';
import { keyGroupFor, subtaskFor } from './keyGroups.ts';

/** Every consumer of the route gets the record (broadcast). */
export const ALL_CONSUMERS = 'all';
/** The record lacks its key: it goes to no consumer (a dead letter). */
export const NO_KEY = 'no-key';
export type PartitionTarget = number | typeof ALL_CONSUMERS | typeof NO_KEY;

/** Whether a field's value can key state: the types `hashCode` is defined for (DESIGN §2). */
export function isKey(v: unknown): v is Key {
  const t = typeof v;
  return t === 'string' || t === 'number' || t === 'bigint' || t === 'boolean';
}

/**
 * Which of one edge's consumer channels a record goes to (DESIGN §1, edge partitioning), as an index into the
 * producer's consumers of that edge (see `consumersFor`): `forward` has one; `hash` has every consumer subtask
 * in order, so the index is the subtask its key group belongs to; `rebalance` deals round robin from `next`.
 */
export class Partitioner {
  /** The next round-robin index; a rescale keeps it (the producer's place in its rotation). */
  next: number;

  constructor(
    readonly partitioning: Partitioning,
    /** The consumer's parallelism and maxParallelism (for `hash`), and how many consumer channels there are. */
    readonly parallelism: number,
    readonly maxParallelism: number,
    readonly channels: number,
    start: number,
  ) {
    this.next = start;
  }

  /** The target of a record whose key (for `hash`) is `key`. */
  target(key: unknown): PartitionTarget {
    switch (this.partitioning) {
      case 'forward':
        return 0;
      case 'hash':
        if (!isKey(key)) return NO_KEY;
        return subtaskFor(keyGroupFor(key, this.maxParallelism), this.parallelism, this.maxParallelism);
      case 'rebalance':
        return this.next++ % this.channels;
      case 'broadcast':
        return ALL_CONSUMERS;
    }
  }
}
