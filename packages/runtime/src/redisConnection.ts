import type { Redis } from 'ioredis';

/**
 * Keeps a Redis connection's errors from going unhandled while ioredis reconnects by itself (Redis restarted, or
 * briefly unreachable): the loss is logged once, and the return once, instead of every failed attempt.
 */
export function watchRedis<T extends Redis>(conn: T, name: string, log: (msg: string, extra?: object) => void): T {
  let down = false;
  conn.on('error', (err: Error) => {
    if (down) return;
    down = true;
    log('Redis connection lost; reconnecting', { connection: name, error: err.message });
  });
  conn.on('ready', () => {
    if (!down) return;
    down = false;
    log('Redis connection back', { connection: name });
  });
  return conn;
}
