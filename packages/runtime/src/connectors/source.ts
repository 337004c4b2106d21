import type { SourceLag } from '../protocol.ts';
import { decodeValue, encodeValue, NO_WATERMARK, SplitWatermarks, type Rec } from '@keyflow/core';

/** Where a source puts what it reads: each record with the split it came from. */
export interface SourceOutput {
  emit(split: number, record: Rec): void;
}

/**
 * A replayable source of a subtask (DESIGN §8): it reads its splits, each at an offset that checkpoints keep and
 * a rescale hands to the split's new owner, so a recovery or a rescale goes on exactly where it left off. Each
 * split's event-time clock (its largest timestamp, `watermarks`) travels with its offset.
 */
export interface Source {
  /** The splits this subtask reads. */
  readonly splits: readonly number[];
  /** Each split's offset (the generator: the next event it emits; a broker: the last message emitted), for the splits it holds or was handed. */
  readonly offsets: Map<number, unknown>;
  /** Per split watermarks (DESIGN §11); the runner feeds it each record's timestamp. */
  readonly watermarks: SplitWatermarks;
  /** Events per second over its splits (0: as fast as it can). */
  readonly rate: number;
  /** The splits subtask `index` of `parallelism` reads. */
  splitsFor(index: number, parallelism: number): number[];
  /** Reads `splits` from now on: at a rescale, before the gained splits' offsets arrive (see `settle`). */
  assign(splits: number[]): void;
  /** The gained offsets arrived: it forgets the splits it gave away and paces itself for those it holds. */
  settle(): void;
  /** Emits up to `budget` events into `out`; whether every split it reads is exhausted. */
  emit(budget: number, out: SourceOutput): { produced: number; exhausted: boolean };
  /** Whether any split it reads has events left. */
  hasBacklog(): boolean;
  /** Connects, before the subtask runs (its splits' offsets restored). */
  open?(): Promise<void>;
  /** At checkpoint n's barrier: what was emitted so far belongs to n (a source acknowledging upstream notes it). */
  snapshot?(checkpoint: number): void;
  /** Checkpoint n completed: what it covers may be acknowledged upstream. */
  completed?(checkpoint: number): Promise<void>;
  /** How far behind its broker each held split is, as last read. */
  lag?(): SourceLag[];
  close?(): Promise<void>;
}

/** A split's state as checkpoints and handovers store it: its offset and the largest event time it emitted. */
export function encodeSplit(source: Source, split: number): Buffer {
  const maxTs = source.watermarks.maxTs(split);
  return encodeValue(maxTs === NO_WATERMARK ? { offset: source.offsets.get(split) } : { offset: source.offsets.get(split), maxTs });
}

/** Loads a split's state (as `encodeSplit` made it) into the source. */
export function loadSplit(source: Source, split: number, data: Uint8Array, now: number): unknown {
  const { offset, maxTs } = decodeValue<{ offset: unknown; maxTs?: number }>(data);
  source.offsets.set(split, offset);
  source.watermarks.load(split, maxTs, now);
  return offset;
}
