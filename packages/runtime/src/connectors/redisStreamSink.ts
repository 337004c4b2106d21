import type { RedisStreamSinkSettings } from '@keyflow/core';
import type { Redis } from 'ioredis';
import { MessageSink, type OutMessage } from './messageSink.ts';
import type { SinkContext } from './sink.ts';

/** How long a published row's marker is kept: far longer than any recovery that could publish the row again. */
const MARKER_TTL_S = 7 * 24 * 3600;

/**
 * XADDs one outbox row's messages and sets the row's marker in one script, unless the marker is there: a row
 * published before (a crash between publishing and deleting it from the outbox) is not added twice.
 * KEYS: stream, marker. ARGV: field, maxLen (0: no trimming), marker TTL, then the messages.
 */
const PUBLISH_ONCE = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local maxLen = tonumber(ARGV[2])
for i = 4, #ARGV do
  if maxLen > 0 then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxLen, '*', ARGV[1], ARGV[i])
  else
    redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[i])
  end
end
redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[3]))
return #ARGV - 3`;

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
  }

  protected async disconnect(): Promise<void> {
    this.redis?.disconnect();
  }

  protected async publish(messages: OutMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const redis = this.redis!;
    const { stream, field, maxLen } = this.settings;
    if (this.delivery === 'at-least-once') {
      const multi = redis.pipeline();
      for (const m of messages)
        if (maxLen > 0) multi.xadd(stream, 'MAXLEN', '~', maxLen, '*', field, m.payload);
        else multi.xadd(stream, '*', field, m.payload);
      const results = await multi.exec();
      const failed = results?.find(([err]) => err);
      if (failed) throw failed[0];
      return;
    }
    // The messages of one outbox row share their id up to the last part (the message's index in the row).
    const row = messages[0]!.id.slice(0, messages[0]!.id.lastIndexOf('.'));
    const marker = `${stream}:keyflow-published:${row}`;
    await (redis as unknown as PublishOnce).keyflowPublishOnce(stream, marker, field, maxLen, MARKER_TTL_S, ...messages.map((m) => m.payload));
  }
}

interface PublishOnce {
  keyflowPublishOnce(...args: (string | number)[]): Promise<number>;
}
