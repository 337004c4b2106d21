import type { Delivery, Rec } from '@keyflow/core';

/** Which subtask a sink writes for; a transactional sink tags and fences its writes with it. */
export interface SinkContext {
  jobId: string;
  vertexId: string;
  attempt: number;
  index: number;
  /**
   * The attempt restarts from a checkpoint of this job with this number: output pre-committed for it (or any
   * earlier one) by an older attempt is committed, the rest of the older attempts' output discarded. 0 when the
   * attempt starts with none of this job's checkpoints; undefined when the subtask joins a running attempt.
   */
  recoverFrom?: number;
}

/**
 * A sink of a subtask: takes records and writes them out, with its delivery guarantee (DESIGN §8).
 *
 * - at-least-once: `flush` writes what is buffered (periodically and at barriers); a recovery replays records
 *   written before, so readers can see output of an attempt that later failed, and see it again.
 * - exactly-once: output becomes visible only with the checkpoint that covers it: `preCommit(n)` at barrier n
 *   makes what came before the barrier durable but invisible, `commit(n)` once n completed makes it visible.
 */
export interface Sink {
  readonly delivery: Delivery;
  /** How often an at-least-once sink's buffered output is written at the latest, if sooner than the subtask's second. */
  readonly flushIntervalMs?: number;
  /** Before the subtask reports running: a transactional sink fences older attempts off and settles their output. */
  open(): Promise<void>;
  process(record: Rec): void;
  /** Writes what is buffered now (at-least-once only; a transactional sink writes only at barriers). */
  flush(): Promise<void>;
  /**
   * Records taken and not written yet (at-least-once sinks that buffer them): past a bound, processing waits for
   * the sink's writes, as a full channel makes it wait (backpressure), instead of the buffer growing without end.
   */
  buffered?(): number;
  /** At barrier n, in call order; the subtask's acknowledgement of n waits for it. */
  preCommit(checkpoint: number): Promise<void>;
  /** Checkpoint n completed: its output, and that of any earlier checkpoint, becomes visible. */
  commit(checkpoint: number): Promise<void>;
  /** The input ended: what is left becomes visible (`lastCompleted`: the newest checkpoint known complete). */
  finish(lastCompleted: number): Promise<void>;
  close(): Promise<void>;
}

/** A newer attempt of the job owns the sink: this subtask is a zombie, and nothing it writes may count. */
export class SinkFencedError extends Error {
  constructor(
    readonly attempt: number,
    readonly current: number,
  ) {
    super(`fenced off: attempt ${attempt} is stale, the sink belongs to attempt ${current}`);
  }
}

/**
 * Whether a sink's failure may pass by itself (the sink retries at its next write) or fails the subtask: an error
 * that says so (`transient`) decides; otherwise Postgres's error classes do (see `isTransient` of the Postgres sink).
 */
export function sinkErrorIsTransient(err: unknown, postgres: (err: unknown) => boolean): boolean {
  const flag = (err as { transient?: unknown } | null)?.transient;
  return typeof flag === 'boolean' ? flag : postgres(err);
}
