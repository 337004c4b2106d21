import type { Rec } from '@keyflow/core';

/** A sink of a subtask: takes records, and writes them out when flushed. */
export interface Sink {
  process(record: Rec): void;
  /** Writes what is buffered; awaited at each barrier before the subtask acknowledges. */
  flush(): Promise<void>;
  close(): Promise<void>;
}
