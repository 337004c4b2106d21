import type { EventTimeSettings, RedisStreamSourceSettings } from '@keyflow/core';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';
import { BufferedSource, type Fetched, type MessageFormat, type SplitLag, type SplitReader } from './bufferedSource.ts';

/** How long one XREAD waits for entries before it comes back empty. */
const BLOCK_MS = 500;

/** What a Redis streams source reads: its keys (one split each) and how. */
export interface RedisStreamsConfig {
  streams: string[];
  /** The entry field holding the message. */
  field: string;
  format: MessageFormat;
  start: 'earliest' | 'latest';
  eventTime: EventTimeSettings;
}

/**
 * Entries of Redis streams, one split per key, read with plain XREAD from the last emitted entry id (no consumer
 * group: the checkpoint is the only cursor, so a recovery or a rescale resumes exactly after what went downstream).
 */
export class RedisStreamSource extends BufferedSource {
  constructor(
    protected readonly config: RedisStreamsConfig,
    /** A connection of its own per split (XREAD blocks it). */
    private readonly connect: () => Promise<Redis>,
    index: number,
    parallelism: number,
    deadLetter: (record: unknown, reason: string) => void,
    log: Logger,
  ) {
    super(config.streams.length, index, parallelism, config.eventTime, config.format, deadLetter, log);
  }

  static fromSettings(
    s: RedisStreamSourceSettings,
    connect: () => Promise<Redis>,
    index: number,
    parallelism: number,
    deadLetter: (record: unknown, reason: string) => void,
    log: Logger,
  ): RedisStreamSource {
    return new RedisStreamSource(
      { streams: s.streams, field: s.field, format: s.format, start: s.start, eventTime: s },
      connect,
      index,
      parallelism,
      deadLetter,
      log,
    );
  }

  protected splitName(split: number): string {
    return this.config.streams[split]!;
  }

  protected async openSplit(split: number, offset: unknown): Promise<SplitReader> {
    const key = this.config.streams[split]!;
    const redis = await this.connect();
    try {
      let after = typeof offset === 'string' ? offset : this.config.start === 'earliest' ? '0-0' : await lastId(redis, key);
      const from = offset === undefined ? after : undefined;
      const field = this.config.field;
      return {
        from,
        next: async (max) => {
          const res = (await redis.xreadBuffer('COUNT', max, 'BLOCK', BLOCK_MS, 'STREAMS', key, after)) as [Buffer, [Buffer, Buffer[]][]][] | null;
          const entries = res?.[0]?.[1] ?? [];
          const out: Fetched[] = [];
          for (const [id, fields] of entries) {
            const offset = id.toString();
            after = offset;
            const data = valueOf(fields, field);
            out.push(data ? { offset, data } : { offset, data: entryText(fields), error: `the entry has no field '${field}'` });
          }
          return out;
        },
        lag: (emitted) => lagOf(redis, key, typeof emitted === 'string' ? emitted : undefined),
        close: async () => void redis.disconnect(),
      };
    } catch (err) {
      redis.disconnect();
      throw err;
    }
  }
}

/** An entry's field value, from its flat [field, value, …] list. */
function valueOf(fields: Buffer[], field: string): Buffer | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i]!.toString() === field) return fields[i + 1];
  return undefined;
}

/** An entry's fields as text, for a dead letter. */
function entryText(fields: Buffer[]): string {
  const out: string[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) out.push(`${fields[i]!.toString()}=${fields[i + 1]!.toString()}`);
  return out.join(' ');
}

/** The newest entry id of a stream ('0-0' when it is empty or missing): where 'latest' starts after. */
async function lastId(redis: Redis, key: string): Promise<string> {
  const last = await redis.xrevrange(key, '+', '-', 'COUNT', 1);
  return last[0]?.[0] ?? '0-0';
}

/** Time behind: the stream's newest id's time minus that of the last entry emitted (ids start with their ms). */
async function lagOf(redis: Redis, key: string, emitted: string | undefined): Promise<SplitLag> {
  const newest = await lastId(redis, key);
  // Nothing emitted yet: behind by everything the stream holds.
  const from = emitted ?? (await redis.xrange(key, '-', '+', 'COUNT', 1))[0]?.[0] ?? newest;
  return { ms: Math.max(0, idMs(newest) - idMs(from)) };
}

function idMs(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}
