import type { HttpSourceSettings } from '@keyflow/core';
import type { Redis } from 'ioredis';
import { compareStreamIds, INGEST_FIELD, ingestStreams, trimIngest, trimmedThrough } from '../ingest.ts';
import type { RedisKeys } from '../keys.ts';
import type { Logger } from '../logger.ts';
import type { SourceLag } from '../protocol.ts';
import type { SplitReader } from './bufferedSource.ts';
import { RedisStreamSource } from './redisStreamSource.ts';

/** Checkpoints whose offsets it keeps at most, waiting for their completion (older ones were declined or lost). */
const KEEP_SNAPSHOTS = 64;

/** How often the backlog (XLEN) of its partitions is read at most. */
const LAG_EVERY_MS = 1000;

/**
 * Records POSTed to /api/ingest/<name>: the partitions of the source's ingest log (Redis streams) as splits, read
 * like any Redis streams source from the last emitted entry id (exactly-once through the checkpointed offsets). Once
 * a checkpoint completes, each partition is trimmed through the offset it covers, so the log holds only what no
 * completed checkpoint covers: the backlog that ingest bounds by `maxBacklog`, and the lag this source reports.
 */
export class HttpSource extends RedisStreamSource {
  /** Each checkpoint's offsets, from its barrier until it completes. */
  private readonly covered = new Map<number, Map<number, string>>();
  private readonly lengths = new Map<number, number>();
  private lagAt = 0;
  private lagging = false;

  constructor(
    private readonly settings: HttpSourceSettings,
    private readonly keys: RedisKeys,
    /** For trimming and lengths (not blocked by reading: each split reads on a connection of its own). */
    private readonly redis: Redis,
    connect: () => Promise<Redis>,
    index: number,
    parallelism: number,
    deadLetter: (record: unknown, reason: string) => void,
    log: Logger,
  ) {
    const streams = ingestStreams(keys, settings.name, settings.partitions);
    super({ streams, field: INGEST_FIELD, format: 'json', start: 'earliest', eventTime: settings }, connect, index, parallelism, deadLetter, log);
  }

  snapshot(checkpoint: number): void {
    const offsets = new Map<number, string>();
    for (const [split, offset] of this.offsets) if (typeof offset === 'string') offsets.set(split, offset);
    this.covered.set(checkpoint, offsets);
    for (const n of this.covered.keys()) if (this.covered.size > KEEP_SNAPSHOTS) this.covered.delete(n);
  }

  /** Checkpoint n completed: each partition it covers is trimmed through its offset there (a recovery reads after it). */
  async completed(checkpoint: number): Promise<void> {
    const offsets = this.covered.get(checkpoint);
    for (const n of this.covered.keys()) if (n <= checkpoint) this.covered.delete(n);
    if (!offsets) return;
    const { name } = this.settings;
    await Promise.all([...offsets].filter(([, id]) => id !== '0-0').map(([split, id]) => trimIngest(this.redis, this.keys, name, split, id)));
  }

  /** Entries waiting per held partition (XLEN): read but not yet checkpointed ones included, as ingest counts them. */
  lag(): SourceLag[] {
    if (!this.lagging && Date.now() - this.lagAt >= LAG_EVERY_MS) void this.refreshLengths();
    return this.splits.flatMap((split) => {
      const messages = this.lengths.get(split);
      return messages === undefined ? [] : [{ split, name: this.config.streams[split]!, messages }];
    });
  }

  /** Warns when entries after the restored offset were trimmed (the offset is older than a checkpoint that completed since). */
  protected async openSplit(split: number, offset: unknown): Promise<SplitReader> {
    if (typeof offset === 'string' && offset !== '0-0') {
      const trimmed = await trimmedThrough(this.redis, this.keys, this.settings.name, split);
      if (trimmed && compareStreamIds(trimmed, offset) > 0)
        this.log.warn(
          { stream: this.config.streams[split], offset, trimmedThrough: trimmed },
          'entries after the restored offset were trimmed for a later checkpoint: this job cannot read them',
        );
    }
    return super.openSplit(split, offset);
  }

  private async refreshLengths(): Promise<void> {
    this.lagging = true;
    this.lagAt = Date.now();
    try {
      const held = [...this.splits];
      const multi = this.redis.multi();
      for (const split of held) multi.xlen(this.config.streams[split]!);
      const res = (await multi.exec()) ?? [];
      this.lengths.clear();
      held.forEach((split, i) => {
        const [err, len] = res[i] ?? [];
        if (!err && typeof len === 'number') this.lengths.set(split, len);
      });
    } catch {
      // Read again on the next report.
    } finally {
      this.lagging = false;
    }
  }
}
