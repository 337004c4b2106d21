import { watchRedis, type RedisKeys, type WorkerEvent } from '@keyflow/runtime';
import type { Redis } from 'ioredis';

/**
 * Reads the workers' events stream and hands each event, in order, to `handle`. Starts at the stream's end:
 * events from before this control plane started belong to attempts it will not coordinate. `onRead` is told of
 * every read that succeeded, events or none: the control plane can hear its workers.
 */
export function consumeWorkerEvents(
  redis: Redis,
  keys: RedisKeys,
  handle: (e: WorkerEvent) => Promise<void>,
  log: (msg: string, extra?: object) => void,
  onRead: () => void = () => {},
): { stop(): Promise<void> } {
  const conn = watchRedis(redis.duplicate(), 'worker events', log);
  let running = true;
  const loop = (async () => {
    let lastId = '$';
    while (running) {
      let res: [string, [string, string[]][]][] | null;
      try {
        res = (await conn.xread('COUNT', 1000, 'BLOCK', 500, 'STREAMS', keys.events, lastId)) as typeof res;
        onRead();
      } catch (err) {
        if (!running) break;
        log('events read failed', { error: (err as Error).message });
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      for (const [, entries] of res ?? [])
        for (const [id, fields] of entries) {
          lastId = id;
          let event: WorkerEvent;
          try {
            event = JSON.parse(fields[1] ?? '');
          } catch {
            log('malformed worker event', { id });
            continue;
          }
          await handle(event).catch((err) => log('event handling failed', { type: event.type, error: (err as Error).stack }));
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
