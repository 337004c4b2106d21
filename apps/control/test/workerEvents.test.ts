import { randomBytes } from 'node:crypto';
import { redisKeys, silentLogger, type WorkerEvent } from '@keyflow/runtime';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDelayProxy, type DelayProxy } from '../bench/delayProxy.ts';
import { consumeWorkerEvents } from '../src/cluster/workerEvents.ts';
import { waitFor } from './harness.ts';

const direct = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const db = Number(direct.pathname.slice(1) || 0);

const running = (index: number): WorkerEvent => ({
  type: 'running',
  jobId: 'job',
  attempt: 1,
  vertexId: 'count',
  index,
  workerId: 'w',
  restoredBytes: 0,
  restoredKeyGroups: 0,
  restoreMs: 0,
});

describe("the control plane's reader of worker events", () => {
  let proxy: DelayProxy;
  let writer: Redis;
  beforeAll(async () => {
    // Redis 30 ms away for the reader: each of its reads comes back 30 ms after Redis answered it, and its next
    // read reaches Redis 30 ms after it was sent, so there is a gap between two reads that a nearby writer fills.
    proxy = await startDelayProxy({ target: { host: direct.hostname, port: Number(direct.port || 6379) }, delayMs: 30 });
    writer = new Redis(direct.toString());
  });
  afterAll(async () => {
    writer.disconnect();
    await proxy.close();
  });

  it('misses no event written between two of its reads of a quiet stream, nor one written before its first', async () => {
    const keys = redisKeys(`kft-events-${randomBytes(3).toString('hex')}`);
    // What came before the reader started is not its business.
    await writer.xadd(keys.events, '*', 'e', JSON.stringify(running(99)));
    const reader = new Redis(proxy.url(db));
    const seen: number[] = [];
    let reads = 0;
    let written = 0;
    const events = consumeWorkerEvents(
      reader,
      keys,
      async (e) => void seen.push(e.index),
      silentLogger,
      () => {
        // Right when an empty read came back (the stream is quiet until then): written before the next read arrives.
        if (++reads === 2) void writer.xadd(keys.events, '*', 'e', JSON.stringify(running(written++)));
      },
    );
    try {
      await waitFor(async () => reads >= 4, 10_000, 'four reads');
      await writer.xadd(keys.events, '*', 'e', JSON.stringify(running(written++)));
      await waitFor(async () => seen.length >= written, 10_000, `${written} events read (read ${JSON.stringify(seen)})`);
      expect(seen).toEqual([0, 1]);
    } finally {
      await events.stop();
      reader.disconnect();
      await writer.unlink(keys.events);
    }
  });
});
