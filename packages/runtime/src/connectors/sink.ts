import type { Rec } from '@keyflow/core';

/** A sink of a subtask: takes records, and writes them out when flushed. */
export interface Sink {
  process(record: Rec): void;
  /** Takes what is buffered at once and writes it; writes run in call order. At a barrier the acknowledgement waits for it. */
  flush(): Promise<void>;
  close(): Promise<void>;
}
