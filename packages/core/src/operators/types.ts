import type { Rec } from '../codec.ts';
import type { Key } from '../hashing.ts';
import type { KeyedStateBackend } from '../stateBackend.ts';
import type { OperatorLogger } from '../sdk/define.ts';

/** Where an operator sends what it produces. */
export interface Output {
  emit(record: Rec): void;
  /** Sends a record to the side output `name` (the edges drawn from it); the runtime's outputs all have it. */
  emitTo?(name: string, record: Rec): void;
}

/**
 * Event time as an operator sees it: the timestamp of the record being processed (undefined: it has none), which
 * is also the timestamp of what the operator emits unless it sets another, and the subtask's input watermark.
 */
export interface RecordTime {
  timestamp: number | undefined;
  watermark: number;
}

export interface OperatorContext {
  /** The keyed state backend, for keyed operators; the runtime sets its current key before each record. */
  backend?: KeyedStateBackend;
  /** Sends a record the operator cannot process to its dead-letter output, with the reason. */
  deadLetter(record: unknown, reason: string): void;
  /** Event time, kept up to date by the runtime (operators that use no event time may go without). */
  time?: RecordTime;
  /** Sends a record that came after its window was done to the operator's late output (counted and sampled). */
  late?(record: unknown, reason: string): void;
  /** Whether the subtask owns a key group now (a rescale's pre-copy holds groups it does not own yet); default: all. */
  owns?(keyGroup: number): boolean;
  /** The wall clock (default `Date.now`; a test harness sets its own). */
  clock?: () => number;
  /** Where the operator logs. */
  log?: OperatorLogger;
  /** This subtask's index and the operator's parallelism. */
  subtask?: { index: number; parallelism: number };
}

/** A transform or keyed operator: one call per record, no I/O. */
export interface StreamOperator {
  /** One record; `input` says which input it came from for a two-input operator (0 left, 1 right). */
  process(record: Rec, key: Key | undefined, out: Output, input?: number): void;
  /** The input watermark rose to `watermark`: fires the event-time timers due by it. */
  onWatermark?(watermark: number, out: Output): void;
  /** The wall clock reached `now`: fires the processing-time timers due by it. */
  onProcessingTime?(now: number, out: Output): void;
}
