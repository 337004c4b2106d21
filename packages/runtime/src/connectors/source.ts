import { decodeValue, encodeValue, type Output } from '@keyflow/core';

/**
 * A replayable source of a subtask (DESIGN §8): it reads its splits, each at an offset that checkpoints keep and
 * a rescale hands to the split's new owner, so a recovery or a rescale goes on exactly where it left off.
 */
export interface Source {
  /** The splits this subtask reads. */
  readonly splits: readonly number[];
  /** Each split's offset (the next event it emits), for the splits it holds or was handed. */
  readonly offsets: Map<number, number>;
  /** Events per second over its splits (0: as fast as it can). */
  readonly rate: number;
  /** The splits subtask `index` of `parallelism` reads. */
  splitsFor(index: number, parallelism: number): number[];
  /** Reads `splits` from now on: at a rescale, before the gained splits' offsets arrive (see `settle`). */
  assign(splits: number[]): void;
  /** The gained offsets arrived: it forgets the splits it gave away and paces itself for those it holds. */
  settle(): void;
  /** Emits up to `budget` events into `out`; whether every split it reads is exhausted. */
  emit(budget: number, out: Output): { produced: number; exhausted: boolean };
  /** Whether any split it reads has events left. */
  hasBacklog(): boolean;
}

/** A split's offset as checkpoints and handovers store it. */
export function encodeOffset(offset: number | undefined): Buffer {
  return encodeValue({ offset });
}

export function decodeOffset(data: Uint8Array): number {
  return decodeValue<{ offset: number }>(data).offset;
}
