import type { Sink } from './sink.ts';

/**
 * Takes every record and keeps none, as Flink's blackhole connector: the subtask's metrics still count what came in,
 * so a pipeline can be measured, or tried out, without a store behind it.
 */
export class BlackholeSink implements Sink {
  /** What it counts includes records a recovery replays. */
  readonly delivery = 'at-least-once';
  async open(): Promise<void> {}
  process(): void {}
  async flush(): Promise<void> {}
  async preCommit(): Promise<void> {}
  async commit(): Promise<void> {}
  async finish(): Promise<void> {}
  async close(): Promise<void> {}
}
