// The keyed count as a team would hand-write it without Keyflow, for `npm run bench` to compare with: one producer
// process deals the generator's events by key into two Redis streams, as msgpack batches, a few XADDs in flight,
// waiting while a stream holds too many; two consumer processes each read one stream, count per user in a Map and
// delete what they read. No checkpoints. Each consumer adds what it counted to `<base>:counted:<index>`.
//   producer <redisUrl> <base> <generator settings as JSON>
//   consumer <redisUrl> <base> <index>
import { decodeBatch, encodeBatch, EventGenerator, keyGroupFor, type GeneratorConfig, type GeneratorEvent } from '@keyflow/core';
import { Redis } from 'ioredis';

const BATCH = 4096;
const IN_FLIGHT = 8;
/** Entries a stream may hold before the producer waits for its consumer. */
const BOUND = 32;

const [role, redisUrl, base, arg] = process.argv.slice(2) as [string, string, string, string];
const stream = (i: number) => `${base}:${i}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The bench forks this process: when the bench goes, so does it.
process.on('disconnect', () => process.exit(0));

async function produce(redis: Redis, config: GeneratorConfig): Promise<never> {
  const gen = new EventGenerator(config);
  const batches: GeneratorEvent[][] = [[], []];
  const lengths = [0, 0];
  const inFlight = new Set<Promise<unknown>>();
  for (let i = 0; ; i++) {
    const event = gen.eventAt(i);
    const s = keyGroupFor(event.user, 128) % 2;
    const batch = batches[s]!;
    batch.push(event);
    if (batch.length < BATCH) continue;
    batches[s] = [];
    const payload = encodeBatch(batch);
    while (lengths[s]! >= BOUND) {
      await sleep(1);
      lengths[s] = await redis.xlen(stream(s));
    }
    while (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
    const sent = redis
      .pipeline()
      .xadd(stream(s), '*', 'd', payload)
      .xlen(stream(s))
      .exec()
      .then((replies) => {
        const [[err], [, length]] = replies as [[Error | null], [Error | null, number]];
        if (err) throw err;
        lengths[s] = length;
      })
      .finally(() => inFlight.delete(sent));
    inFlight.add(sent);
  }
}

async function consume(redis: Redis, index: number): Promise<never> {
  const counts = new Map<string, number>();
  let lastId = '0-0';
  for (;;) {
    const res = (await redis.xreadBuffer('COUNT', 8, 'BLOCK', 1000, 'STREAMS', stream(index), lastId)) as [Buffer, [Buffer, Buffer[]][]][] | null;
    const entries = res?.[0]?.[1] ?? [];
    if (!entries.length) continue;
    let n = 0;
    for (const [, fields] of entries) {
      const events = decodeBatch(fields[1]!) as GeneratorEvent[];
      for (const e of events) counts.set(e.user, (counts.get(e.user) ?? 0) + 1);
      n += events.length;
    }
    const ids = entries.map(([id]) => id.toString());
    lastId = ids.at(-1)!;
    // Not awaited: the next read goes out at once, after these on the same connection.
    void redis
      .pipeline()
      .xdel(stream(index), ...ids)
      .incrby(`${base}:counted:${index}`, n)
      .exec()
      .catch((err: unknown) => {
        console.error(err);
        process.exit(1);
      });
  }
}

const redis = new Redis(redisUrl);
await (role === 'producer' ? produce(redis, JSON.parse(arg) as GeneratorConfig) : consume(redis, Number(arg)));
