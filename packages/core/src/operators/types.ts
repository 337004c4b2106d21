import type { Rec } from '../codec.ts';
import type { Key } from '../hashing.ts';
import type { KeyedStateBackend } from '../stateBackend.ts';

/** Where an operator sends what it produces. */
export interface Output {
  emit(record: Rec): void;
}

export interface OperatorContext {
  /** The keyed state backend, for keyed operators; the runtime sets its current key before each record. */
  backend?: KeyedStateBackend;
  /** Sends a record the operator cannot process to its dead-letter output, with the reason. */
  deadLetter(record: unknown, reason: string): void;
}

/** A transform or keyed operator: one call per record, no I/O. */
export interface StreamOperator {
  process(record: Rec, key: Key | undefined, out: Output): void;
}
