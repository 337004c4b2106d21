// Benchmark (not a test): records/s through keyBy → count → exactly-once Postgres at p=2, fed by JetStream, by Redis
// Streams and, in the same run, by the built-in generator, the same keys each way. The brokers are filled once
// before the runs (a backlog each job drains from its start); BENCH_RUNS (3) fresh jobs of each, median with min
// and max. Writes docs/benchmarks/connectors.json.
import { loadavg } from 'node:os';
import type { GraphInput } from '@keyflow/core';
import { dropDatabase } from '@keyflow/db/testing';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { startStack, type Stack } from '../test/harness.ts';
import { benchDatabase, machine, stats, writeResult } from './setup.ts';

const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 3000);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 8000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** Messages in each broker's backlog: more than a job drains in warm-up and measurement (checked). */
const MESSAGES = Number(process.env.BENCH_CONNECTOR_MESSAGES ?? 4_000_000);
const KEYS = 50_000;
const SPLITS = 4;
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const tag = Date.now().toString(36);
const streams = Array.from({ length: SPLITS }, (_, i) => `kfbench:${tag}:s${i}`);
const natsStream = `KFBENCH_${tag}`;
const subjects = Array.from({ length: SPLITS }, (_, i) => `kfbench.${tag}.${i}`);

/** The i-th message: a user drawn over KEYS (a fixed scatter, so every source counts the same keys). */
const message = (i: number) => JSON.stringify({ user: `user-${(i * 7919) % KEYS}`, item: i % 1000, amount: i % 100, ts: 1_767_225_600_000 + i });

type Feed = 'generator' | 'redis' | 'nats';

function sourceOf(feed: Feed, connection: string): { type: string; settings: Record<string, unknown> } {
  switch (feed) {
    case 'generator':
      return { type: 'generator', settings: { seed: 3, rate: 0, keys: KEYS, skew: 'uniform', splits: SPLITS } };
    case 'redis':
      return { type: 'redisStream', settings: { streams: streams.join(',') } };
    case 'nats':
      return { type: 'nats', settings: { connection, stream: natsStream, subjects: subjects.join(',') } };
  }
}

const graph = (feed: Feed, table: string, connection: string): GraphInput => ({
  vertices: [
    { id: 'events', type: sourceOf(feed, connection).type, parallelism: 2, settings: sourceOf(feed, connection).settings },
    { id: 'count', type: 'count', parallelism: 2 },
    { id: 'sink', type: 'postgres', parallelism: 2, settings: { table, valueField: 'count' } },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'sink', partitioning: 'forward' },
  ],
});

async function fillRedis(): Promise<void> {
  const redis = new Redis(REDIS_URL);
  for (let i = 0; i < MESSAGES;) {
    const multi = redis.pipeline();
    for (let j = 0; j < 10_000 && i < MESSAGES; j++, i++) multi.xadd(streams[i % SPLITS]!, '*', 'data', message(i));
    await multi.exec();
  }
  redis.disconnect();
}

async function fillNats(): Promise<void> {
  const nc = await connect({ servers: NATS_URL });
  await jetstreamManager(nc).then((jsm) => jsm.streams.add({ name: natsStream, subjects: [`kfbench.${tag}.*`] }));
  const js = jetstream(nc);
  for (let i = 0; i < MESSAGES;) {
    const acks: Promise<unknown>[] = [];
    for (let j = 0; j < 5000 && i < MESSAGES; j++, i++) acks.push(js.publish(subjects[i % SPLITS]!, message(i)));
    await Promise.all(acks);
  }
  await nc.close();
}

async function cleanUp(): Promise<void> {
  const redis = new Redis(REDIS_URL);
  await redis.del(...streams);
  redis.disconnect();
  const nc = await connect({ servers: NATS_URL });
  await (await jetstreamManager(nc)).streams.delete(natsStream).catch(() => {});
  await nc.close();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rate(stack: Stack, feed: Feed, run: number): Promise<number> {
  const pipeline = await stack.client.createPipeline({
    name: `bench-${feed}-${run}-${stack.prefix}`,
    graph: graph(feed, `bench_${feed}_${run}`, `bench-nats-${stack.prefix}`),
  });
  const job = await stack.client.deployJob({ pipelineId: pipeline.id, checkpointIntervalMs: 10_000 });
  try {
    const counted = async () => (await stack.client.getJob(job.id)).metrics?.vertices.count?.recordsIn ?? 0;
    await sleep(WARMUP_MS);
    const a = await counted();
    const t0 = performance.now();
    await sleep(MEASURE_MS);
    const b = await counted();
    const perSec = ((b - a) * 1000) / (performance.now() - t0);
    const detail = await stack.client.getJob(job.id);
    if (detail.state !== 'RUNNING') throw new Error(`job is ${detail.state}: ${detail.failureReason}`);
    const recovered = detail.events.find((e) => e.toState === 'RECOVERING');
    if (detail.attempt !== 1 || recovered) throw new Error(`the job recovered during the run (${recovered?.reason ?? `attempt ${detail.attempt}`})`);
    // A drained backlog would measure the broker running dry, not the pipeline.
    if (feed !== 'generator' && b >= MESSAGES) throw new Error(`the ${feed} backlog ran out during the window: raise BENCH_CONNECTOR_MESSAGES`);
    return perSec;
  } finally {
    await stack.client.cancelJob(job.id).catch(() => {});
  }
}

const dbUrl = await benchDatabase();
try {
  console.log(`filling Redis Streams and JetStream with ${MESSAGES.toLocaleString('en')} messages each`);
  await Promise.all([fillRedis(), fillNats()]);
  const runs: { loadBefore: number; generator: number; redis: number; nats: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    // Two workers of three slots: each takes one subtask of the source, of the count and of the sink.
    const stack = await startStack({ workers: 2, slots: 3 });
    try {
      // The runs' stacks share the bench database: a connection each.
      await stack.client.createConnection({ name: `bench-nats-${stack.prefix}`, kind: 'nats', url: NATS_URL });
      const loadBefore = Number(loadavg()[0]!.toFixed(2));
      const run = { loadBefore, generator: 0, redis: 0, nats: 0 };
      for (const feed of ['generator', 'redis', 'nats'] as const) run[feed] = Math.round(await rate(stack, feed, i));
      runs.push(run);
      console.log(
        `run ${i + 1}: generator ${run.generator.toLocaleString('en')}, Redis Streams ${run.redis.toLocaleString('en')}, JetStream ${run.nats.toLocaleString('en')} records/s`,
      );
    } finally {
      await stack.close();
    }
  }
  const of = (feed: Feed) =>
    stats(
      runs.map((r) => r[feed]),
      0,
    );
  const result = {
    ...machine(),
    parallelism: 2,
    warmupMs: WARMUP_MS,
    measureMs: MEASURE_MS,
    keys: KEYS,
    backlog: MESSAGES,
    runs,
    recordsPerSecGenerator: of('generator'),
    recordsPerSecRedisStreams: of('redis'),
    recordsPerSecJetStream: of('nats'),
    /** Each broker's rate / the generator's within each run, then median, min and max of those. */
    ratioRedisStreamsToGenerator: stats(
      runs.map((r) => r.redis / r.generator),
      3,
    ),
    ratioJetStreamToGenerator: stats(
      runs.map((r) => r.nats / r.generator),
      3,
    ),
  };
  const f = (x: ReturnType<typeof stats>) => `${x.median.toLocaleString('en')} (${x.min.toLocaleString('en')}–${x.max.toLocaleString('en')})`;
  console.log(
    `median (min–max) of ${RUNS}: generator ${f(result.recordsPerSecGenerator)}, Redis Streams ${f(result.recordsPerSecRedisStreams)}, JetStream ${f(result.recordsPerSecJetStream)} records/s`,
  );
  writeResult('connectors.json', result);
} finally {
  await cleanUp().catch((err) => console.error(`cleaning up the brokers failed: ${(err as Error).message}`));
  await dropDatabase(dbUrl);
}
process.exit(0);
