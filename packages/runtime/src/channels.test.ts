import { randomBytes } from 'node:crypto';
import { decodeBatch } from '@keyflow/core';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ChannelWriter, parseEntry } from './channels.ts';
import { withScripts, XADD_FULL, XADD_OUT_OF_ORDER, type KeyflowRedis } from './scripts.ts';
import { nextId } from './subtask/commands.ts';

const fields = (...kv: string[]) => kv.map((x) => Buffer.from(x));

describe('parseEntry', () => {
  it.each([
    [fields('t', 'w', 's', '4', 'n', '7:31'), { type: 'barrier', seq: 4, checkpoint: 7, checkpointId: 31 }],
    [
      fields('t', 'w', 's', '5', 'n', '8:32:3:4:count'),
      { type: 'barrier', seq: 5, checkpoint: 8, checkpointId: 32, rescale: { scalingId: 3, parallelism: 4, chainId: 'count' } },
    ],
    [fields('t', 'e', 's', '9', 'n', '0'), { type: 'end', seq: 9 }],
  ])('reads %#', (f, entry) => {
    expect(parseEntry(f)).toEqual(entry);
  });

  it('returns undefined for malformed entries instead of throwing', () => {
    expect(parseEntry(fields('t', 'w', 's', '1', 'n', 'x:y'))).toBeUndefined();
    expect(parseEntry(fields('t', 'b', 's', '1'))).toBeUndefined();
    expect(parseEntry(fields('nonsense'))).toBeUndefined();
  });
});

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redis = withScripts(new Redis(url));
const prefix = `${process.env.KEYFLOW_PREFIX ?? 'kft'}-channels-${randomBytes(3).toString('hex')}`;
let keys = 0;
const newKey = () => `${prefix}:ch:${++keys}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterAll(async () => {
  const left = await redis.keys(`${prefix}:*`);
  if (left.length) await redis.unlink(...left);
  redis.disconnect();
});

/** Seeded integers in [lo, hi] (mulberry32), so a failing run can be replayed from its seed. */
function randomInts(seed: number): (lo: number, hi: number) => number {
  let a = seed >>> 0;
  return (lo, hi) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return lo + Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * (hi - lo + 1));
  };
}

/**
 * The writer's connection, counting its XADDs in flight (and the most at once) and those refused as out of order
 * (behind a refused one); it fails the entry `failSeq` without sending it, and holds each send back `jitterMs()`
 * after the one before it (in order, as a slow link would), so that the consumer trims between entries in flight.
 */
function counted(opts: { failSeq?: number; jitterMs?: () => number } = {}) {
  const stats = { inFlight: 0, most: 0, outOfOrder: 0 };
  let link: Promise<unknown> = Promise.resolve();
  const conn = {
    boundedXadd: async (key: string, bound: number, seq: number, ...rest: (string | Buffer | number)[]) => {
      stats.most = Math.max(stats.most, ++stats.inFlight);
      try {
        if (seq === opts.failSeq) throw new Error(`entry ${seq} failed`);
        if (opts.jitterMs) {
          const ms = opts.jitterMs();
          const turn = link.then(() => (ms ? sleep(ms) : undefined));
          link = turn;
          await turn;
        }
        const reply = await redis.boundedXadd(key, bound, seq, ...rest);
        if (reply === XADD_OUT_OF_ORDER) stats.outOfOrder++;
        return reply;
      } finally {
        stats.inFlight--;
      }
    },
  } as unknown as KeyflowRedis;
  return { conn, stats };
}

/** What a consumer saw: each entry as its kind and content (records of a batch one by one), and the seqs in order. */
type Seen = { seqs: number[]; items: string[] };

/**
 * Reads a channel as a subtask does (from its last id, trimming what it read, skipping what is no channel entry),
 * pausing `pauseMs()` after each read, until its end. After each read it adds `foreign()` foreign entries: the
 * writer's idea of the room left in the stream is then wrong, and the bound refuses entries it has in flight.
 */
async function consume(key: string, count: () => number, pauseMs: () => number, foreign = () => 0): Promise<Seen> {
  const conn = new Redis(url);
  const seen: Seen = { seqs: [], items: [] };
  let lastId = '0-0';
  try {
    for (;;) {
      const res = (await conn.xreadBuffer('COUNT', count(), 'BLOCK', 50, 'STREAMS', key, lastId)) as [Buffer, [Buffer, Buffer[]][]][] | null;
      for (const [id, f] of res?.[0]?.[1] ?? []) {
        lastId = id.toString();
        const entry = parseEntry(f);
        if (!entry) continue;
        seen.seqs.push(entry.seq);
        if (entry.type === 'batch') for (const r of decodeBatch(entry.data)) seen.items.push(`r${String(r)}`);
        else if (entry.type === 'barrier') seen.items.push(`b${entry.checkpoint}`);
        else if (entry.type === 'watermark') seen.items.push(`w${entry.watermark}`);
        else if (entry.type === 'end') return seen;
      }
      await sleep(pauseMs());
      if (res) await conn.xtrim(key, 'MINID', nextId(lastId));
      for (let n = foreign(); n > 0; n--) await conn.xadd(key, '*', 't', 'foreign');
    }
  } finally {
    conn.disconnect();
  }
}

describe('ChannelWriter', () => {
  it('lands every entry once and in order under a tiny bound, with a consumer that reads and trims slowly at random', async () => {
    const seed = Number(process.env.CHANNELS_SEED) || Math.floor(Math.random() * 2 ** 31);
    console.log(`channel order property: seed ${seed} (CHANNELS_SEED=${seed} replays it)`);
    // One generator for the runs' shapes and the producer's steps, one each for the link and the consumer of a run.
    const int = randomInts(seed);
    let waited = 0;
    let outOfOrder = 0;
    for (let run = 0; run < 25; run++) {
      const key = newKey();
      const maxInFlight = int(1, 8);
      const link = randomInts(int(0, 2 ** 31));
      const { conn, stats } = counted({ jitterMs: () => (link(0, 9) < 3 ? 1 : 0) });
      const bound = int(1, 4);
      // Foreign entries already there: the writer starts sure of room the stream does not have.
      for (let n = int(0, bound); n > 0; n--) await redis.xadd(key, '*', 't', 'foreign');
      const writer = new ChannelWriter(conn, key, { batchSize: int(1, 4), bound }, maxInFlight);
      const c = randomInts(int(0, 2 ** 31));
      const reader = consume(
        key,
        () => c(1, 4),
        () => (c(0, 9) < 3 ? c(1, 4) : 0),
        () => (c(0, 9) < 2 ? c(1, 4) : 0),
      );
      const sent: string[] = [];
      const records = int(50, 300);
      for (let i = 0; i < records; i++) {
        writer.push(i, undefined);
        sent.push(`r${i}`);
        const step = int(0, 99);
        if (step < 3) {
          await writer.barrier(i, i);
          sent.push(`b${i}`);
        } else if (step < 6) {
          await writer.watermark(i);
          sent.push(`w${i}`);
        } else await writer.flush(false);
        expect(stats.inFlight).toBeLessThanOrEqual(maxInFlight);
      }
      await writer.end();
      const seen = await reader;
      expect({ run, seqs: seen.seqs }).toEqual({ run, seqs: Array.from({ length: seen.seqs.length }, (_, i) => i + 1) });
      expect(seen.items).toEqual(sent);
      expect(stats.most).toBeLessThanOrEqual(maxInFlight);
      waited += writer.takeBackpressure();
      outOfOrder += stats.outOfOrder;
    }
    // The bound did refuse entries, also with later ones in flight, and the waits were counted.
    expect(waited).toBeGreaterThan(0);
    expect(outOfOrder).toBeGreaterThan(0);
  }, 60_000);

  it('keeps up to maxInFlight XADDs in flight, never more', async () => {
    const { conn, stats } = counted();
    const writer = new ChannelWriter(conn, newKey(), { batchSize: 1, bound: 10_000 }, 4);
    for (let i = 0; i < 200; i++) {
      writer.push(i, undefined);
      await writer.flush(false);
    }
    await writer.drain();
    expect(stats.most).toBe(4);
  });

  it('resolves a barrier only once it and everything before it are in the stream', async () => {
    const key = newKey();
    const writer = new ChannelWriter(redis, key, { batchSize: 1, bound: 2 }, 8);
    for (let i = 0; i < 5; i++) writer.push(i, undefined);
    let done = false;
    const barrier = writer.barrier(1, 1).then(() => (done = true));
    await sleep(100);
    // Two entries fit; the other records and the barrier wait for the consumer.
    expect({ done, waiting: writer.waiting, length: await redis.xlen(key) }).toEqual({ done: false, waiting: true, length: 2 });
    const seen = consume(
      key,
      () => 1,
      () => 20,
    );
    await barrier;
    const last = await redis.xrevrangeBuffer(key, '+', '-', 'COUNT', 1);
    expect(parseEntry(last[0]![1])).toMatchObject({ type: 'barrier', seq: 6, checkpoint: 1 });
    expect(writer.waiting).toBe(false);
    expect(writer.takeBackpressure()).toBeGreaterThan(50);
    await writer.end();
    expect((await seen).items).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'b1']);
  });

  it('surfaces a failed send on the next call and writes nothing after the failed entry', async () => {
    const key = newKey();
    const { conn } = counted({ failSeq: 5 });
    const writer = new ChannelWriter(conn, key, { batchSize: 1, bound: 100 }, 8);
    for (let i = 0; i < 20; i++) writer.push(i, undefined);
    // Entries 6 to 8 were in flight behind the failed 5: the script refuses them, for 5 is not in.
    await expect(writer.flush(true)).rejects.toThrow('entry 5 failed');
    writer.push(20, undefined);
    await expect(writer.drain()).rejects.toThrow('entry 5 failed');
    await expect(writer.end()).rejects.toThrow('entry 5 failed');
    const entries = await redis.xrangeBuffer(key, '-', '+');
    expect(entries.map(([, f]) => parseEntry(f)!.seq)).toEqual([1, 2, 3, 4]);
  });

  it('waits a while, writing nothing, when its stream was deleted (the stop or recovery that comes for it says why), then fails', async () => {
    const key = newKey();
    const writer = new ChannelWriter(redis, key, { batchSize: 1, bound: 100 }, 8);
    writer.push(0, undefined);
    await writer.flush(true);
    await writer.drain();
    await redis.del(key);
    writer.push(1, undefined);
    let settled = false;
    writer.end().then(
      () => (settled = true),
      () => (settled = true),
    );
    const deadline = Date.now() + 2000;
    while (!writer.waiting && Date.now() < deadline) await sleep(10);
    expect(writer.waiting).toBe(true);
    await sleep(300);
    expect(settled).toBe(false);
    expect(await redis.exists(key)).toBe(0);
    // Nobody came for it: it fails, and still wrote nothing.
    const deadline2 = Date.now() + 10_000;
    while (!settled && Date.now() < deadline2) await sleep(50);
    expect(settled).toBe(true);
    await expect(writer.drain()).rejects.toThrow(/does not hold entry 1 any more/);
    expect(await redis.exists(key)).toBe(0);
  });

  it('stops waiting on a full or lost channel once its subtask ended (fenced off, canceled), and leaves the rest out', async () => {
    for (const lost of [false, true]) {
      const key = newKey();
      let ended = false;
      const writer = new ChannelWriter(redis, key, { batchSize: 1, bound: 2 }, 8, () => ended);
      writer.push(0, undefined);
      await writer.flush(true);
      await writer.drain();
      if (lost) await redis.del(key);
      for (let i = 1; i < 6; i++) writer.push(i, undefined);
      let settled = false;
      const flushed = writer
        .flush(true)
        .then(() => writer.drain())
        .finally(() => (settled = true));
      const deadline = Date.now() + 2000;
      while (!writer.waiting && Date.now() < deadline) await sleep(10);
      // Nobody reads (or the stream is gone): it waits, well within the lost stream's grace.
      expect({ lost, waiting: writer.waiting, settled }).toEqual({ lost, waiting: true, settled: false });
      ended = true;
      await flushed;
      expect(await redis.xlen(key)).toBe(lost ? 0 : 2);
      expect(writer.waiting).toBe(false);
    }
  });

  it('debloats: a slow consumer’s channel holds about debloatMs of its work, not the whole bound; a fast one the whole bound again', async () => {
    const holds = async (debloatMs: number) => {
      const key = newKey();
      const writer = new ChannelWriter(redis, key, { batchSize: 1, bound: 32, debloatMs }, 8);
      let pauseMs = 200;
      const reader = consume(
        key,
        () => (pauseMs ? 1 : 64),
        () => pauseMs,
      );
      let producing = true;
      const producer = (async () => {
        for (let i = 0; producing; i++) {
          writer.push(i, undefined);
          await writer.flush(false);
        }
        await writer.end();
      })();
      try {
        // Five entries a second read: 200 ms of the consumer's work is one entry, and the bound goes to its least, 2.
        await sleep(3500);
        const slow = { bound: writer.bound, length: await redis.xlen(key) };
        pauseMs = 0;
        const deadline = Date.now() + 10_000;
        while (writer.bound < 32 && Date.now() < deadline) await sleep(20);
        return { slow, fast: writer.bound };
      } finally {
        producing = false;
        await producer;
        await reader;
      }
    };
    const debloated = await holds(200);
    expect(debloated.slow.bound).toBe(2);
    expect(debloated.slow.length).toBeLessThanOrEqual(2);
    expect(debloated.fast).toBe(32);
    // Without debloating the slow consumer's channel fills up to its bound.
    expect((await holds(0)).slow).toEqual({ bound: 32, length: 32 });
  }, 60_000);

  it('answers with the length once in, takes an entry sent again as in, refuses one out of order or over the bound, and lets foreign entries be', async () => {
    const key = newKey();
    const send = (seq: number) => redis.boundedXadd(key, 3, seq, 't', 'e', 's', seq, 'n', '0');
    expect(await send(1)).toBe(1);
    expect(await send(1)).toBe(1);
    expect(await send(3)).toBe(XADD_OUT_OF_ORDER);
    await redis.xadd(key, '*', 't', 'garbage');
    expect(await send(2)).toBe(3);
    expect(await send(3)).toBe(XADD_FULL);
    expect(await redis.xlen(key)).toBe(3);
  });
});
