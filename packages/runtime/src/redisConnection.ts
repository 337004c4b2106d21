import type { Redis } from 'ioredis';
import type { Logger } from './logger.ts';

/**
 * Keeps a Redis connection's errors from going unhandled while ioredis reconnects by itself (Redis restarted, or
 * briefly unreachable): the loss is logged once, and the return once, instead of every failed attempt.
 */
export function watchRedis<T extends Redis>(conn: T, name: string, logger: Logger): T {
  let down = false;
  conn.on('error', (err: Error) => {
    if (down) return;
    down = true;
    logger.warn({ connection: name, error: err.message }, 'Redis connection lost; reconnecting');
  });
  conn.on('ready', () => {
    if (!down) return;
    down = false;
    logger.info({ connection: name }, 'Redis connection back');
  });
  return conn;
}
