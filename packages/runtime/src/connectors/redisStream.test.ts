import { randomUUID } from 'node:crypto';
import { redisStreamSinkSettings, redisStreamSourceSettings, type Rec } from '@keyflow/core';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.ts';
import { RedisStreamSink } from './redisStreamSink.ts';
import { RedisStreamSource } from './redisStreamSource.ts';
import { SinkFencedError, type SinkContext } from './sink.ts';
import { checkpointSplits, emitExactly, emitUntil, rescaleSource, restoreSplits, type Emitted } from './testing/sourceDriver.ts';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const databaseUrl = process.env.KEYFLOW_SINK_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
let redis: Redis;
const closing: { close(): Promise<void> }[] = [];
const keys: string[] = [];

beforeAll(() => {
  redis = new Redis(redisUrl);
});
afterAll(async () => {
  await Promise.all(closing.map((c) => c.close()));
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

/** Fresh stream keys for one test. */
function streams(n: number): string[] {
  const base = `kftest:rs:${randomUUID()}`;
  const out = Array.from({ length: n }, (_, i) => `${base}:${i}`);
  keys.push(...out);
  return out;
}

async function append(key: string, records: unknown[]): Promise<void> {
  const multi = redis.multi();
  for (const r of records) multi.xadd(key, '*', 'data', typeof r === 'string' ? r : JSON.stringify(r));
  await multi.exec();
}

function source(keys: string[], index = 0, parallelism = 1, settings: Record<string, unknown> = {}) {
  const deadLetters: { record: unknown; reason: string }[] = [];
  const s = RedisStreamSource.fromSettings(
    redisStreamSourceSettings.parse({ streams: keys.join(','), ...settings }),
    async () => redis.duplicate({ maxRetriesPerRequest: null }),
    index,
    parallelism,
    (record, reason) => deadLetters.push({ record, reason }),
    silentLogger,
  );
  closing.push(s);
  return { s, deadLetters };
}

const ids = (got: Emitted[]) => got.map((g) => (g.record as { id: string }).id);
const records = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, ts: 1000 + i }));

describe('Redis streams source', () => {
  it('reads each stream key as a split, the last emitted entry id its offset', async () => {
    const [a, b, c] = streams(3);
    await append(a!, records('a', 5));
    await append(b!, records('b', 5));
    await append(c!, records('c', 5));
    const { s } = source([a!, b!, c!]);
    expect(s.splits).toEqual([0, 1, 2]);
    const got = await emitUntil(s, (g) => g.length >= 15);
    expect(got).toHaveLength(15);
    expect(new Set(ids(got)).size).toBe(15);
    // In order within a split.
    expect(ids(got.filter((g) => g.split === 1))).toEqual(records('b', 5).map((r) => r.id));
    const last = await redis.xrevrange(b!, '+', '-', 'COUNT', 1);
    expect(s.offsets.get(1)).toBe(last[0]![0]);
  });

  it('dead-letters what is not a JSON object, with its raw text and the reason, and reads on', async () => {
    const [a] = streams(1);
    await append(a!, [{ id: 'x0' }, 'not json {', '[1,2]', { id: 'x1' }]);
    await redis.xadd(a!, '*', 'other', 'field');
    await append(a!, [{ id: 'x2' }]);
    const { s, deadLetters } = source([a!]);
    const got = await emitUntil(s, (g) => g.length >= 3);
    expect(ids(got)).toEqual(['x0', 'x1', 'x2']);
    expect(deadLetters).toEqual([
      { record: 'not json {', reason: expect.stringMatching(/^not valid JSON/) },
      { record: '[1,2]', reason: expect.stringContaining('not a JSON object') },
      { record: 'other=field', reason: "the entry has no field 'data'" },
    ]);
  });

  it('resumes after a recovery right after the last entry its checkpoint covers: nothing lost, nothing twice', async () => {
    const [a, b] = streams(2);
    await append(a!, records('a', 300));
    await append(b!, records('b', 300));
    const first = source([a!, b!]).s;
    const before = await emitExactly(first, 250);
    const checkpoint = checkpointSplits(first);
    // Emitted after the checkpoint, then the process dies: these come again.
    await emitExactly(first, 100);
    await first.close();
    await append(a!, records('a-late', 50));

    const second = source([a!, b!]).s;
    restoreSplits(second, checkpoint);
    const after = await emitUntil(second, (g) => g.length >= 400);
    const all = [...ids(before), ...ids(after)];
    expect(all).toHaveLength(650);
    expect(new Set(all).size).toBe(650);
  });

  it('hands splits over in a live rescale from one subtask to two and back, each entry once', async () => {
    const keysOf = streams(4);
    for (const k of keysOf) await append(k, records(`${k.slice(-1)}-`, 200));
    const solo = source(keysOf, 0, 1).s;
    const got: Emitted[] = await emitExactly(solo, 300);
    // Up to two: subtask 0 keeps splits 0 and 1 and hands 2 and 3 to a new subtask 1.
    const handed = checkpointSplits(solo);
    rescaleSource(solo, 0, 2, handed);
    const joined = source(keysOf, 1, 2).s;
    restoreSplits(joined, handed);
    expect(solo.splits).toEqual([0, 1]);
    expect(joined.splits).toEqual([2, 3]);
    await emitExactly(solo, 100).then((g) => got.push(...g));
    await emitExactly(joined, 100).then((g) => got.push(...g));
    // Back to one: subtask 1 hands its splits to subtask 0.
    const back = checkpointSplits(joined);
    await joined.close();
    rescaleSource(solo, 0, 1, back);
    await emitUntil(solo, (g) => g.length >= 800, 15_000, got);
    expect(got).toHaveLength(800);
    expect(new Set(ids(got)).size).toBe(800);
  });

  it('a reader whose buffer is full waits for room without holding the event loop, and goes on once records are emitted', async () => {
    const [a] = streams(1);
    await append(a!, records('f', 10_000));
    const { s } = source([a!]);
    // Starts the reader; it fills its buffer (a few thousand entries) and must then wait, not spin.
    s.emit(0, { emit: () => {} });
    const ticks = await new Promise<number>((resolve) => {
      let n = 0;
      const timer = setInterval(() => {
        if (++n === 20) {
          clearInterval(timer);
          resolve(n);
        }
      }, 10);
    });
    expect(ticks).toBe(20);
    const got = await emitUntil(s, (g) => g.length >= 10_000);
    expect(new Set(ids(got)).size).toBe(10_000);
  });

  it("starts a new job at 'latest' after the newest entry, pinned so a recovery before any new entry resumes there", async () => {
    const [a] = streams(1);
    await append(a!, records('old', 10));
    const { s } = source([a!], 0, 1, { start: 'latest' });
    s.emit(10, { emit: () => {} });
    await waitFor(() => s.offsets.get(0) !== undefined);
    const pinned = checkpointSplits(s);
    await append(a!, records('new', 3));
    const got = await emitUntil(s, (g) => g.length >= 3);
    expect(ids(got)).toEqual(['new0', 'new1', 'new2']);
    const again = source([a!], 0, 1, { start: 'latest' }).s;
    restoreSplits(again, pinned);
    expect(ids(await emitUntil(again, (g) => g.length >= 3))).toEqual(['new0', 'new1', 'new2']);
  });

  it('reports how far behind the newest entry each split is, in time', async () => {
    const [a] = streams(1);
    await redis.xadd(a!, '1000-0', 'data', JSON.stringify({ id: 'first' }));
    await redis.xadd(a!, '61000-0', 'data', JSON.stringify({ id: 'second' }));
    const { s } = source([a!]);
    await emitExactly(s, 1);
    await waitFor(() => (s.lag()[0]?.ms ?? 0) > 0);
    expect(s.lag()).toEqual([{ split: 0, name: a, ms: 60_000 }]);
  });
});

function sinkSetup(delivery: 'exactly-once' | 'at-least-once' = 'exactly-once', settings: Record<string, unknown> = {}) {
  const [stream] = streams(1);
  const jobId = randomUUID();
  const make = (ctx: Partial<SinkContext> = {}) => {
    const s = new RedisStreamSink(
      redisStreamSinkSettings.parse({ stream, delivery, ...settings }),
      databaseUrl,
      { jobId, vertexId: 'out', attempt: 1, index: 0, recoverFrom: 0, ...ctx },
      async () => redis.duplicate(),
    );
    closing.push(s);
    return s;
  };
  const entries = async () => (await redis.xrange(stream!, '-', '+')).map(([, f]) => JSON.parse(f[1]!) as { n: number });
  return { stream: stream!, make, entries };
}

const rec = (n: number) => ({ n }) as Rec;

describe('Redis streams sink', () => {
  it('exactly-once: entries appear when their checkpoint completes, not at the barrier', async () => {
    const { make, entries } = sinkSetup();
    const s = make();
    await s.open();
    for (let i = 0; i < 3; i++) s.process(rec(i));
    await s.preCommit(1);
    expect(await entries()).toEqual([]);
    s.process(rec(3));
    await s.preCommit(2);
    await s.commit(1);
    expect(await entries()).toEqual([rec(0), rec(1), rec(2)]);
    await s.commit(2);
    expect(await entries()).toEqual([rec(0), rec(1), rec(2), rec(3)]);
  });

  it('a recovery adds what the older attempt pre-committed up to its checkpoint once, and drops the rest (replayed)', async () => {
    const { make, entries } = sinkSetup();
    const first = make({ attempt: 1 });
    await first.open();
    first.process(rec(1));
    await first.preCommit(1);
    first.process(rec(2));
    await first.preCommit(2);
    // The worker dies before checkpoint 1's completion reached it; the job restarts from checkpoint 1.
    const second = make({ attempt: 2, recoverFrom: 1 });
    await second.open();
    expect(await entries()).toEqual([rec(1)]);
    second.process(rec(2));
    await second.preCommit(2);
    await second.commit(2);
    expect(await entries()).toEqual([rec(1), rec(2)]);
    // The zombie can neither pre-commit nor commit.
    first.process(rec(9));
    await expect(first.preCommit(3)).rejects.toBeInstanceOf(SinkFencedError);
    await expect(first.commit(2)).rejects.toBeInstanceOf(SinkFencedError);
    expect(await entries()).toEqual([rec(1), rec(2)]);
  });

  it('a row published again (a crash between publishing and forgetting it) is not added twice', async () => {
    const { make, entries } = sinkSetup();
    const s = make();
    await s.open();
    const messages = [0, 1, 2].map((i) => ({ id: `job.out.1.1.0.0.${i}`, payload: JSON.stringify(rec(i)) }));
    const publish = (s as unknown as { publish(m: typeof messages): Promise<void> }).publish.bind(s);
    await publish(messages);
    await publish(messages);
    expect(await entries()).toEqual([rec(0), rec(1), rec(2)]);
  });

  it('at-least-once: entries appear at each flush', async () => {
    const { make, entries } = sinkSetup('at-least-once');
    const s = make();
    await s.open();
    s.process(rec(1));
    await s.flush();
    expect(await entries()).toEqual([rec(1)]);
  });

  it('at-least-once: a flush of more messages than one script call takes adds them all, in order', async () => {
    const { make, entries } = sinkSetup('at-least-once');
    const s = make();
    await s.open();
    const n = 12_345;
    for (let i = 0; i < n; i++) s.process(rec(i));
    await s.flush();
    s.process(rec(n));
    await s.flush();
    expect((await entries()).map((e) => e.n)).toEqual(Array.from({ length: n + 1 }, (_, i) => i));
  });

  it('at-least-once: maxLen trims the stream as it adds', async () => {
    const { make, entries } = sinkSetup('at-least-once', { maxLen: 100 });
    const s = make();
    await s.open();
    for (let i = 0; i < 5_000; i++) s.process(rec(i));
    await s.flush();
    const kept = (await entries()).map((e) => e.n);
    // Approximate trimming (~) keeps at least maxLen, whole macro nodes: the newest, in order.
    expect(kept.length).toBeGreaterThanOrEqual(100);
    expect(kept.length).toBeLessThan(5_000);
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => 5_000 - kept.length + i));
  });

  it('at-least-once: a flush Redis refuses fails with its error and keeps the messages for the next one', async () => {
    const { stream, make, entries } = sinkSetup('at-least-once');
    const s = make();
    await s.open();
    await redis.set(stream, 'not a stream');
    s.process(rec(1));
    await expect(s.flush()).rejects.toThrow(/WRONGTYPE/);
    expect(s.buffered()).toBe(1);
    await redis.del(stream);
    await s.flush();
    expect(await entries()).toEqual([rec(1)]);
  });
});

async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
