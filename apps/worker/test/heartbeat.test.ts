import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { Heartbeat } from '../src/heartbeat.ts';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const prefix = `hb-${randomBytes(3).toString('hex')}`;
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

/** Keeps this thread busy, as a subtask loading a large state does. */
function busy(ms: number) {
  const until = Date.now() + ms;
  while (Date.now() < until);
}

async function started(name: string, stuckMs: number) {
  const key = `${prefix}:worker:${name}`;
  const hb = new Heartbeat(
    {
      redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      key,
      workersKey: `${prefix}:workers`,
      fields: { id: name, host: 'h', pid: '1', slots: '1', operators: '["dedupe@0123456789ab"]' },
      intervalMs: 100,
      stuckMs,
    },
    () => {},
  );
  await hb.report([{ jobId: 'j', vertexId: 'count', index: 0 }]);
  const last = async () => Number(await redis.hget(key, 'lastHeartbeat'));
  return { hb, key, last };
}

describe('the worker heartbeat', () => {
  it('goes on while the main thread is busy, and lists what the main thread reported', async () => {
    const { hb, key, last } = await started('busy', 10_000);
    expect(JSON.parse((await redis.hget(key, 'subtasks'))!)).toEqual([{ jobId: 'j', vertexId: 'count', index: 0 }]);
    // The user operators it can run: the pool lists them, so a refusal for want of one is explained at a glance.
    expect(JSON.parse((await redis.hget(key, 'operators'))!)).toEqual(['dedupe@0123456789ab']);
    const from = Date.now();
    busy(1500);
    // Beats came from the other thread while this one was busy.
    expect(await last()).toBeGreaterThan(from + 1000);
    expect(await redis.sismember(`${prefix}:workers`, 'busy')).toBe(1);
    // The cores the process used: about one while this thread was busy, falling once it idles.
    const cpu = async () => Number(await redis.hget(key, 'cpu'));
    expect(await cpu()).toBeGreaterThan(0.6);
    const deadline = Date.now() + 5000;
    while ((await cpu()) >= 0.3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await cpu()).toBeLessThan(0.3);
    await hb.stop();
  });

  it('stops once the main thread has been stuck for longer than it may be', async () => {
    const { hb, last } = await started('stuck', 400);
    const from = Date.now();
    busy(2000);
    // The last beat came no later than the allowance (plus one interval) after the main thread stopped.
    const at = await last();
    expect(at).toBeLessThan(from + 400 + 300);
    // And it beats again once the main thread is back.
    const deadline = Date.now() + 5000;
    while ((await last()) === at && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await last()).toBeGreaterThan(at);
    await hb.stop();
  });
});
