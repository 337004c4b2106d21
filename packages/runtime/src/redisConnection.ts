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

/**
 * Ends blocking reads of one connection at their own deadline. Redis ends a BLOCK on its clock tick (`hz`, 10 by
 * default): on a quiet server a read blocking 5 ms lasts 100, and a subtask that blocks to wait for its next linger
 * or sink write then waits that long. At the deadline this sends CLIENT UNBLOCK … TIMEOUT from another connection,
 * which ends the read as its timeout would. Where CLIENT is refused (some hosted Redis), reads end when Redis gets
 * round to it, as before.
 */
export class BlockingDeadline {
  private id: Promise<number | undefined> | undefined;

  constructor(
    private readonly blocking: Redis,
    private readonly other: Redis,
  ) {
    // A connection that reconnected has another id.
    blocking.on('ready', () => (this.id = undefined));
  }

  /** Runs `read`, a read on the blocking connection that blocks up to `blockMs`, and wakes it after `blockMs`. */
  async within<T>(blockMs: number, read: () => Promise<T>): Promise<T> {
    const id = await (this.id ??= this.blocking.client('ID').then(Number, () => undefined));
    if (id === undefined) return read();
    const timer = setTimeout(() => void this.other.client('UNBLOCK', id, 'TIMEOUT').catch(() => {}), blockMs);
    try {
      return await read();
    } finally {
      clearTimeout(timer);
    }
  }
}
