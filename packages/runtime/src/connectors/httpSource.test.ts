import { randomBytes } from 'node:crypto';
import { httpSourceSettings, keyGroupFor, type Rec } from '@keyflow/core';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendToIngest, compareStreamIds, ingestBacklog, ingestStreams, nextStreamId, partitionOf, trimIngest, trimmedThrough } from '../ingest.ts';
import { redisKeys } from '../keys.ts';
import { silentLogger, type Logger } from '../logger.ts';
import { HttpSource } from './httpSource.ts';
import { checkpointSplits, emitExactly, emitUntil, restoreSplits, type Emitted } from './testing/sourceDriver.ts';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `kftest-http-${randomBytes(4).toString('hex')}`;
const keys = redisKeys(prefix);
let redis: Redis;
const closing: { close(): Promise<void> }[] = [];

beforeAll(() => {
  redis = new Redis(redisUrl);
});
afterAll(async () => {
  await Promise.all(closing.map((c) => c.close()));
  const left = await redis.keys(`${prefix}:ingest:*`);
  if (left.length) await redis.del(...left);
  redis.disconnect();
});

let names = 0;
/** An HTTP source's settings with a name of its own (each test its own ingest log). */
const settingsOf = (extra: Record<string, unknown> = {}) =>
  httpSourceSettings.parse({ name: `src-${++names}`, partitions: 3, timestamps: 'ingestion', ...extra });

function source(settings: ReturnType<typeof settingsOf>, index = 0, parallelism = 1, log: Logger = silentLogger) {
  const s = new HttpSource(
    settings,
    keys,
    redis,
    async () => redis.duplicate({ maxRetriesPerRequest: null }),
    index,
    parallelism,
    () => {},
    log,
  );
  closing.push(s);
  return s;
}

const events = (n: number, from = 0): Rec[] => Array.from({ length: n }, (_, i) => ({ id: from + i, user: `u${(from + i) % 7}` }));
const idsOf = (got: Emitted[]) => got.map((g) => (g.record as { id: number }).id);
const lengths = (s: ReturnType<typeof settingsOf>) => Promise.all(ingestStreams(keys, s.name, s.partitions).map((k) => redis.xlen(k)));

describe('the ingest log', () => {
  it('puts records with the same partition key value in the same partition (hashed as keys are), others round robin', async () => {
    expect(partitionOf({ user: 'hello' }, 'user', 128)).toBe(35);
    expect(partitionOf({ user: 'hello' }, 'user', 3)).toBe(keyGroupFor('hello', 3));
    expect(partitionOf({ a: { b: 'Apple' } }, 'a.b', 128)).toBe(51);
    expect(partitionOf({ user: null }, 'user', 3)).toBeUndefined();
    expect(partitionOf({ user: { nested: 1 } }, 'user', 3)).toBeUndefined();
    expect(partitionOf({ user: 'x' }, undefined, 3)).toBeUndefined();

    const spread = settingsOf({ partitions: 4 });
    expect(await appendToIngest(redis, keys, spread, events(10))).toEqual({ appended: 10, refused: false, backlog: 0 });
    // Round robin from a random partition: 10 over 4 is 3, 3, 2, 2 in some order.
    expect((await lengths(spread)).sort()).toEqual([2, 2, 3, 3]);
  });

  it('refuses a whole append that would take the backlog over maxBacklog, appending nothing', async () => {
    const s = settingsOf({ maxBacklog: 10 });
    expect((await appendToIngest(redis, keys, s, events(8))).appended).toBe(8);
    expect(await appendToIngest(redis, keys, s, events(3, 8))).toEqual({ appended: 0, refused: true, backlog: 8 });
    expect(await ingestBacklog(redis, keys, s.name, s.partitions)).toBe(8);
    expect((await appendToIngest(redis, keys, s, events(2, 8))).appended).toBe(2);
    expect(await ingestBacklog(redis, keys, s.name, s.partitions)).toBe(10);
  });

  it('orders entry ids, and knows the one after another', () => {
    expect(nextStreamId('1700000000000-0')).toBe('1700000000000-1');
    expect(nextStreamId('5-41')).toBe('5-42');
    expect(nextStreamId('5-18446744073709551615')).toBe('6-0');
    expect(compareStreamIds('5-10', '5-9')).toBe(1);
    expect(compareStreamIds('5-9', '10-0')).toBe(-1);
    expect(compareStreamIds('7-3', '7-3')).toBe(0);
  });

  it('trims a partition through an id, that entry included, and remembers the highest id it was trimmed through', async () => {
    const s = settingsOf({ partitions: 1 });
    const key = keys.ingest(s.name, 0);
    for (const id of ['1-1', '1-2', '1-3', '2-0']) await redis.xadd(key, id, 'data', '{}');
    expect(await trimIngest(redis, keys, s.name, 0, '1-2')).toBe(2);
    expect((await redis.xrange(key, '-', '+')).map(([id]) => id)).toEqual(['1-3', '2-0']);
    expect(await trimmedThrough(redis, keys, s.name, 0)).toBe('1-2');
    // A late trim through an older id removes nothing and leaves the mark.
    expect(await trimIngest(redis, keys, s.name, 0, '1-1')).toBe(0);
    expect(await trimmedThrough(redis, keys, s.name, 0)).toBe('1-2');
    expect(await trimIngest(redis, keys, s.name, 0, '2-0')).toBe(2);
    expect(await trimmedThrough(redis, keys, s.name, 0)).toBe('2-0');
    expect(await redis.xlen(key)).toBe(0);
  });
});

describe('HTTP source', () => {
  it('reads each partition as a split, in order within it, the last emitted entry id its offset', async () => {
    const s = settingsOf({ partitionKey: 'user' });
    await appendToIngest(redis, keys, s, events(30));
    const src = source(s);
    expect(src.splits).toEqual([0, 1, 2]);
    const got = await emitUntil(src, (g) => g.length >= 30);
    expect(idsOf(got).sort((a, b) => a - b)).toEqual(events(30).map((e) => e.id));
    for (const split of [0, 1, 2]) {
      const inSplit = got.filter((g) => g.split === split);
      // A user's records all come from the partition its value hashes to, in the order they were posted.
      for (const g of inSplit) expect(partitionOf(g.record, 'user', 3)).toBe(split);
      expect(idsOf(inSplit)).toEqual([...idsOf(inSplit)].sort((a, b) => a - b));
      const last = await redis.xrevrange(keys.ingest(s.name, split), '+', '-', 'COUNT', 1);
      if (inSplit.length) expect(src.offsets.get(split)).toBe(last[0]![0]);
    }
  });

  it('splits the partitions between subtasks', async () => {
    const s = settingsOf({ partitions: 4 });
    expect(source(s, 0, 2).splits).toEqual([0, 1]);
    expect(source(s, 1, 2).splits).toEqual([2, 3]);
  });

  it('recovers from a checkpoint exactly: what came after it is read again, nothing before it', async () => {
    const s = settingsOf();
    await appendToIngest(redis, keys, s, events(40));
    const first = source(s);
    const before = await emitExactly(first, 25);
    const checkpoint = checkpointSplits(first);
    first.snapshot(1);
    // Emitted after the checkpoint, then lost with the subtask.
    await emitExactly(first, 10);
    await first.close();

    await appendToIngest(redis, keys, s, events(20, 40));
    const second = source(s);
    restoreSplits(second, checkpoint);
    const after = await emitUntil(second, (g) => g.length >= 35);
    const all = [...idsOf(before), ...idsOf(after)].sort((a, b) => a - b);
    expect(all).toEqual(events(60).map((e) => e.id));
  });

  it('trims each partition through the offsets of a completed checkpoint; a recovery from it still reads on exactly', async () => {
    const s = settingsOf();
    await appendToIngest(redis, keys, s, events(30));
    const src = source(s);
    const before = await emitExactly(src, 12);
    const checkpoint = checkpointSplits(src);
    const covered = new Map(src.offsets);
    src.snapshot(1);
    await emitExactly(src, 6);
    src.snapshot(2);
    // Nothing is trimmed before the checkpoint completes.
    expect(await ingestBacklog(redis, keys, s.name, s.partitions)).toBe(30);

    await src.completed(1);
    // What checkpoint 1 covers is gone (each offset's entry included); what it does not cover stays.
    expect(await ingestBacklog(redis, keys, s.name, s.partitions)).toBe(30 - 12);
    for (const [split, offset] of covered) expect(await redis.xrange(keys.ingest(s.name, split), '-', String(offset))).toEqual([]);
    // A completion of an older checkpoint (late, or out of order) trims nothing more.
    await src.completed(1);
    expect(await ingestBacklog(redis, keys, s.name, s.partitions)).toBe(18);
    await src.close();

    const recovered = source(s);
    restoreSplits(recovered, checkpoint);
    const rest = await emitUntil(recovered, (g) => g.length >= 18);
    expect([...idsOf(before), ...idsOf(rest)].sort((a, b) => a - b)).toEqual(events(30).map((e) => e.id));
    // Checkpoint 2 of the old subtask completes too: it trims through what it covered, no further.
    await src.completed(2);
    expect(await ingestBacklog(redis, keys, s.name, s.partitions)).toBe(30 - 12 - 6);
  });

  it('says when entries after a restored offset were trimmed already (restored from an older checkpoint)', async () => {
    const s = settingsOf({ partitions: 1 });
    await appendToIngest(redis, keys, s, events(10));
    const src = source(s);
    await emitExactly(src, 3);
    const old = checkpointSplits(src);
    await emitExactly(src, 5);
    src.snapshot(2);
    await src.completed(2);
    await src.close();

    const warnings: string[] = [];
    const log = { ...silentLogger, warn: (_: object, msg: string) => void warnings.push(msg) };
    const restored = source(s, 0, 1, log);
    restoreSplits(restored, old);
    const got = await emitUntil(restored, (g) => g.length >= 2);
    expect(idsOf(got)).toEqual([8, 9]);
    expect(warnings).toContain('entries after the restored offset were trimmed for a later checkpoint: this job cannot read them');
  });

  it('reports as lag the entries waiting in each partition it holds', async () => {
    const s = settingsOf({ partitions: 2, partitionKey: 'user' });
    const recs = events(20);
    await appendToIngest(redis, keys, s, recs);
    const src = source(s);
    const expected = [0, 1].map((split) => recs.filter((r) => partitionOf(r, 'user', 2) === split).length);
    const lag = await waitForLag(src, (l) => l.length === 2);
    expect(lag).toEqual([
      { split: 0, name: keys.ingest(s.name, 0), messages: expected[0] },
      { split: 1, name: keys.ingest(s.name, 1), messages: expected[1] },
    ]);
    await emitExactly(src, 20);
    src.snapshot(1);
    await src.completed(1);
    await waitForLag(src, (l) => l.every((x) => x.messages === 0), 3000);
  });
});

/** Reads the source's lag until `ok` holds for it (it is refreshed in the background, once a second). */
async function waitForLag(src: HttpSource, ok: (lag: ReturnType<HttpSource['lag']>) => boolean, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lag = src.lag();
    if (ok(lag)) return lag;
    if (Date.now() > deadline) throw new Error(`lag not as expected after ${timeoutMs} ms: ${JSON.stringify(lag)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
