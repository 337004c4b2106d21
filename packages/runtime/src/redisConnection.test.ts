import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { BlockingDeadline } from './redisConnection.ts';

// Blocking reads that end at their own deadline, against a real Redis. The reads below block for ever at Redis's end
// (BLOCK 0): only the deadline's CLIENT UNBLOCK can end them, so these tests need no clock.

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const opened: Redis[] = [];
const connect = (options: RedisOptions = {}) => {
  const r = new Redis(url, { maxRetriesPerRequest: null, ...options });
  opened.push(r);
  return r;
};
afterAll(() => {
  for (const r of opened) r.disconnect();
});

const streamKey = () => `kft-deadline-${randomBytes(4).toString('hex')}`;
const readForever = (r: Redis, key: string, after = '$') => r.xread('BLOCK', 0, 'STREAMS', key, after);

describe('BlockingDeadline', { timeout: 10_000 }, () => {
  it('ends a read that nothing answers at its deadline, as a timeout', async () => {
    const [blocking, other] = [connect(), connect()];
    const deadline = new BlockingDeadline(blocking, other);
    await expect(deadline.within(20, () => readForever(blocking, streamKey()))).resolves.toBeNull();
  });

  it('gives what arrives before the deadline, and leaves the next read on the connection alone', async () => {
    const [blocking, other, writer] = [connect(), connect(), connect()];
    const deadline = new BlockingDeadline(blocking, other);
    const key = streamKey();
    // After '0', not '$': the read is sent only once the connection's id is known, and the write may come first.
    const read = deadline.within(60_000, () => readForever(blocking, key, '0'));
    await writer.xadd(key, '*', 'f', 'one');
    expect((await read)?.[0]?.[1].map(([, f]) => f[1])).toEqual(['one']);
    // A read without a deadline right after: nothing of the first one's wake-up may end it.
    const last = (await writer.xrevrange(key, '+', '-', 'COUNT', 1))[0]![0];
    const next = readForever(blocking, key, last);
    await new Promise((r) => setTimeout(r, 100));
    await writer.xadd(key, '*', 'f', 'two');
    expect((await next)?.[0]?.[1].map(([, f]) => f[1])).toEqual(['two']);
  });

  it('wakes reads after the blocking connection reconnected (it has another client id then)', async () => {
    const [blocking, other] = [connect(), connect()];
    const deadline = new BlockingDeadline(blocking, other);
    await expect(deadline.within(20, () => readForever(blocking, streamKey()))).resolves.toBeNull();
    const before = await blocking.client('ID');
    await other.client('KILL', 'ID', String(before));
    await new Promise<void>((resolve) => blocking.once('ready', () => resolve()));
    expect(await blocking.client('ID')).not.toBe(before);
    await expect(deadline.within(20, () => readForever(blocking, streamKey()))).resolves.toBeNull();
  });

  it('where CLIENT is refused, reads as asked and ends when Redis ends the read', async () => {
    const admin = connect();
    const user = `kft-noclient-${randomBytes(3).toString('hex')}`;
    await admin.call('ACL', 'SETUSER', user, 'on', 'nopass', '~*', '&*', '+@all', '-client');
    try {
      const [blocking, other] = [connect({ username: user }), connect({ username: user })];
      await expect(blocking.client('ID')).rejects.toThrow(/NOPERM/);
      const deadline = new BlockingDeadline(blocking, other);
      const key = streamKey();
      // No wake-up is possible: the read blocks until Redis's own timeout, or data.
      await expect(deadline.within(20, () => blocking.xread('BLOCK', 50, 'STREAMS', key, '$'))).resolves.toBeNull();
      const read = deadline.within(20, () => readForever(blocking, key, '0'));
      await new Promise((r) => setTimeout(r, 100));
      await admin.xadd(key, '*', 'f', 'late');
      expect((await read)?.[0]?.[1].map(([, f]) => f[1])).toEqual(['late']);
    } finally {
      await admin.call('ACL', 'DELUSER', user);
    }
  });
});
