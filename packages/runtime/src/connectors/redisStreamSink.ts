import type { RedisStreamSinkSettings } from '@keyflow/core';
import type { Redis } from 'ioredis';
import { MessageSink, type OutMessage } from './messageSink.ts';
import type { SinkContext } from './sink.ts';

/** How long a published row's marker is kept: far longer than any recovery that could publish the row again. */
const MARKER_TTL_S = 7 * 24 * 3600;

/**
 * Lua that XADDs ARGV[first..] in order to KEYS[1], one entry field ARGV[1] each, trimming to about ARGV[2] entries
 * (0: no trimming): the body both scripts below share.
 */
const xaddFrom = (first: number) => `
local maxLen = tonumber(ARGV[2])
for i = ${first}, #ARGV do
  if maxLen > 0 then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxLen, '*', ARGV[1], ARGV[i])
  else
    redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[i])
  end
end`;

/**
 * XADDs one outbox row's messages and sets the row's marker in one script, unless the marker is there: a row
 * published before (a crash between publishing and deleting it from the outbox) is not added twice.
 * KEYS: stream, marker. ARGV: field, maxLen (0: no trimming), marker TTL, then the messages.
 */
const PUBLISH_ONCE = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
${xaddFrom(4)}
redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[3]))
return #ARGV - 3`;

/**
 * XADDs messages in order to one stream in one script call: a command per message (ioredis builds each, Redis parses
 * each) cost the at-least-once sink most of its subtask's time under load, and its event loop's longest stretches.
 * KEYS: stream. ARGV: field, maxLen (0: no trimming), then the messages.
 */
const XADD_ALL = `${xaddFrom(3)}
return #ARGV - 2`;

/** Messages per script call at most: Redis runs a script to its end, and nothing else meanwhile. */
const XADD_CHUNK = 5_000;

/**
 * XADDs records as JSON (one entry field) to a Redis stream. Exactly-once (the default) publishes at checkpoint
 * completion through MessageSink's outbox; Redis has no idempotent XADD, so each outbox row is added by a script
 * together with a marker key that makes adding it again a no-op. At-least-once XADDs on every flush.
 */
export class RedisStreamSink extends MessageSink {
  private redis: Redis | undefined;

  constructor(
    private readonly settings: RedisStreamSinkSettings,
    databaseUrl: string,
    ctx: SinkContext,
    private readonly connectRedis: () => Promise<Redis>,
  ) {
    super(settings.delivery, databaseUrl, ctx);
  }

  protected async connect(): Promise<void> {
    this.redis = await this.connectRedis();
    this.redis.defineCommand('keyflowPublishOnce', { numberOfKeys: 2, lua: PUBLISH_ONCE });
    this.redis.defineCommand('keyflowXaddAll', { numberOfKeys: 1, lua: XADD_ALL });
  }

  protected async disconnect(): Promise<void> {
    this.redis?.disconnect();
  }

  protected async publish(messages: OutMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const redis = this.redis!;
    const { stream, field, maxLen } = this.settings;
    if (this.delivery === 'at-least-once') {
      // Sent together, in order, on one connection: Redis runs them one after the other.
      const calls: Promise<number>[] = [];
      for (let i = 0; i < messages.length; i += XADD_CHUNK)
        calls.push((redis as unknown as Scripts).keyflowXaddAll(stream, field, maxLen, ...messages.slice(i, i + XADD_CHUNK).map((m) => m.payload)));
      await Promise.all(calls);
      return;
    }
    // The messages of one outbox row share their id up to the last part (the message's index in the row).
    const row = messages[0]!.id.slice(0, messages[0]!.id.lastIndexOf('.'));
    const marker = `${stream}:keyflow-published:${row}`;
    await (redis as unknown as Scripts).keyflowPublishOnce(stream, marker, field, maxLen, MARKER_TTL_S, ...messages.map((m) => m.payload));
  }
}

interface Scripts {
  keyflowPublishOnce(...args: (string | number)[]): Promise<number>;
  keyflowXaddAll(...args: (string | number)[]): Promise<number>;
}
