import type { LogSinkSettings, Rec } from '@keyflow/core';
import type { Redis } from 'ioredis';
import type { Sink } from './sink.ts';

/** Keeps the latest records of a subtask readable through the API, in a bounded Redis list per operator. */
export class LogSink implements Sink {
  /** A sample, rewritten by a recovery's replay. */
  readonly delivery = 'at-least-once';
  private recent: Rec[] = [];

  constructor(
    private readonly settings: LogSinkSettings,
    private readonly redis: Redis,
    private readonly key: string,
  ) {}

  process(record: Rec): void {
    this.recent.push(record);
    if (this.recent.length > this.settings.sampleSize * 2) this.recent = this.recent.slice(-this.settings.sampleSize);
  }

  async flush(): Promise<void> {
    if (this.recent.length === 0) return;
    const lines = this.recent.slice(-this.settings.sampleSize).map((r) => JSON.stringify({ at: Date.now(), record: r }, bigintSafe));
    this.recent = [];
    await this.redis
      .multi()
      .lpush(this.key, ...lines)
      .ltrim(this.key, 0, this.settings.sampleSize - 1)
      .exec();
  }

  async open(): Promise<void> {}

  preCommit(): Promise<void> {
    return this.flush();
  }

  async commit(): Promise<void> {}

  finish(): Promise<void> {
    return this.flush();
  }

  async close(): Promise<void> {}
}

function bigintSafe(_: string, v: unknown) {
  return typeof v === 'bigint' ? v.toString() : v;
}
