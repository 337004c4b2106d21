import { parseJson, watchRedis, workerEventSchema, type Logger, type RedisKeys, type WorkerEvent } from '@keyflow/runtime';
import type { Redis } from 'ioredis';

/** Malformed events kept for a look (newest first), at most this many. */
const MALFORMED_KEPT = 100;

/**
 * Reads the workers' events stream and hands each event, in order, to `handle`. Starts at the stream's end:
 * events from before this control plane started belong to attempts it will not coordinate. `onRead` is told of
 * every read that succeeded, events or none: the control plane can hear its workers. An entry that is not a valid
 * event is never trusted: it is logged and kept in a dead-letter list with the reason (`keys.malformedEvents`).
 */
export function consumeWorkerEvents(
  redis: Redis,
  keys: RedisKeys,
  handle: (e: WorkerEvent) => Promise<void>,
  logger: Logger,
  onRead: () => void = () => {},
): { stop(): Promise<void> } {
  const conn = watchRedis(redis.duplicate(), 'worker events', logger);
  let running = true;
  const loop = (async () => {
    // Not '$': a read with '$' that returns nothing leaves the next one to start from its own now, and an event
    // added between the two (a subtask's `running`, say) would be lost; the job would wait for it for ever.
    let lastId: string | undefined;
    while (running) {
      let res: [string, [string, string[]][]][] | null;
      try {
        lastId ??= await streamEnd(conn, keys.events);
        res = (await conn.xread('COUNT', 1000, 'BLOCK', 500, 'STREAMS', keys.events, lastId)) as typeof res;
        onRead();
      } catch (err) {
        if (!running) break;
        logger.warn({ error: (err as Error).message }, 'reading worker events failed; retrying');
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      for (const [, entries] of res ?? [])
        for (const [id, fields] of entries) {
          lastId = id;
          const event = parseJson(workerEventSchema, fields[1]);
          if (!event.ok) {
            logger.warn({ id, reason: event.reason }, 'malformed worker event: kept aside, not handled');
            await redis
              .multi()
              .lpush(keys.malformedEvents, JSON.stringify({ at: Date.now(), id, reason: event.reason, entry: fields }))
              .ltrim(keys.malformedEvents, 0, MALFORMED_KEPT - 1)
              .exec()
              .catch(() => {});
            continue;
          }
          await handle(event.value).catch((err) =>
            logger.error({ type: event.value.type, error: (err as Error).stack }, 'handling a worker event failed'),
          );
        }
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      conn.disconnect();
    },
  };
}

/** The id of a stream's last entry, or 0-0 when it has none: reading after it yields exactly what comes next. */
async function streamEnd(redis: Redis, key: string): Promise<string> {
  const [last] = await redis.xrevrange(key, '+', '-', 'COUNT', 1);
  return last?.[0] ?? '0-0';
}
