import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDelayProxy, type DelayProxy } from '../bench/delayProxy.ts';

const direct = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const DELAY_MS = 20;
const key = `${process.env.KEYFLOW_PREFIX ?? 'kft'}-delay-${randomBytes(3).toString('hex')}`;

describe('delay proxy', () => {
  let proxy: DelayProxy;
  let redis: Redis;

  beforeAll(async () => {
    proxy = await startDelayProxy({ target: { host: direct.hostname, port: Number(direct.port || 6379) }, delayMs: DELAY_MS });
    redis = new Redis(proxy.url(Number(direct.pathname.slice(1) || 0)));
    await redis.ping();
  });

  afterAll(async () => {
    await redis.unlink(`${key}:n`, `${key}:big`);
    redis.disconnect();
    await proxy.close();
  });

  it('delays a round trip by the delay each way', async () => {
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      expect(await redis.ping()).toBe('PONG');
      const ms = performance.now() - t0;
      expect(ms).toBeGreaterThanOrEqual(2 * DELAY_MS);
      expect(ms).toBeLessThan(2 * DELAY_MS + 200);
    }
  });

  it('keeps a pipeline of 1,000 commands in order', async () => {
    const pipeline = redis.pipeline();
    for (let i = 0; i < 1000; i++) pipeline.incr(`${key}:n`);
    const t0 = performance.now();
    const replies = await pipeline.exec();
    // One round trip, not a thousand.
    expect(performance.now() - t0).toBeLessThan(20 * DELAY_MS);
    expect(replies!.map(([err, n]) => err ?? n)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
  });

  it('carries a large value through intact', async () => {
    const value = randomBytes(5 * 1024 * 1024);
    await redis.set(`${key}:big`, value);
    expect((await redis.getBuffer(`${key}:big`))!.equals(value)).toBe(true);
  });
});
