// Benchmark (not a test): a checkpoint of 1,000,000 keys of count state, end to end, and the throughput dip during it.
// `generator (p=2, 1,000,000 uniform keys, unbounded, as fast as it can: BENCH_RATE) → keyBy(user) → count (p=2) →
// blackhole` (the log sink where no blackhole exists) on 2 worker processes; no periodic checkpoints. Once count took in
// 5 records per key (99.3 % of the keys have state) and BENCH_WARMUP_MS passed, a first checkpoint (not measured: it
// also pays for first uses), then BENCH_CHECKPOINTS (3) more, BENCH_GAP_MS (15,000) apart, each triggered on demand
// (POST /jobs/:id/checkpoints). Each: trigger → completed as the control plane records it, its size, and where the
// time went, from the subtasks' acknowledgements as they sent them (the events stream, Redis's clock): trigger → the
// sources' barriers, the barrier's way to count (through the records queued ahead of it), alignment, sync and async
// parts, the last acknowledgement → completed. Throughput from the count subtasks' own metrics events (records per
// 500 ms window): the rate over the checkpoint (its duration, at least 1 s) and over its worst second, against the
// steady rate of the 5 s before its trigger. Then, on the state of the last checkpoint, its parts again, alone:
// reading count subtask 0's key groups back (CheckpointStorage.read), serializing them, writing them as the storage does
// (a binary COPY from the client, CheckpointStorage.write), as it did before (Prisma createMany), and the same rows by
// a binary COPY from a file of the server's (no client: a lower bound), also into a table of the default storage
// (pglz-compressed; the chunk table stores them uncompressed). BENCH_RUNS (3) fresh runs; median with min and max over every measured checkpoint.
// Writes docs/benchmarks/checkpoint.json.
import { loadavg } from 'node:os';
import { KeyedStateBackend, keyGroupsOf, operatorSpec, rangeFor, type GraphInput } from '@keyflow/core';
import { dropDatabase } from '@keyflow/db/testing';
import { CheckpointStorage, redisKeys } from '@keyflow/runtime';
import { startStack, waitFor, type Stack } from '../test/harness.ts';
import { benchDatabase, machine, spread, stats, writeResult } from './setup.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CHECKPOINTS = Number(process.env.BENCH_CHECKPOINTS ?? 3);
const GAP_MS = Number(process.env.BENCH_GAP_MS ?? 15_000);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 5000);
const RATE = Number(process.env.BENCH_RATE ?? 0);
const KEYS = Number(process.env.BENCH_KEYS ?? 1_000_000);
const EVENTS_PER_KEY = 5;
const STEADY_MS = 5000;
const P = 2;
const SINK = operatorSpec('blackhole') ? 'blackhole' : 'log';
const TARGET_MS = 1000;
const TARGET_DIP = 0.1;

const graph: GraphInput = {
  vertices: [
    { id: 'events', type: 'generator', parallelism: P, settings: { seed: 13, rate: RATE, keys: KEYS, skew: 'uniform', splits: 16 } },
    { id: 'count', type: 'count', parallelism: P },
    { id: 'sink', type: SINK, parallelism: P },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'sink', partitioning: 'forward' },
  ],
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A worker event as read from the events stream: when Redis took it, and what it says (the fields used here). */
interface Event {
  at: number;
  type: string;
  vertexId: string;
  index: number;
  windowMs?: number;
  vertices?: Record<string, { recordsIn: number }>;
  checkpointId?: number;
  alignmentMs?: number;
  syncMs?: number;
  asyncMs?: number;
}

/** Reads the stack's worker events as they come, beside the control plane (which reads them too). */
function watchEvents(stack: Stack) {
  const conn = stack.redis.duplicate();
  const key = redisKeys(stack.prefix).events;
  const events: Event[] = [];
  let last = '0-0';
  let on = true;
  const loop = (async () => {
    while (on) {
      const res = (await conn.xread('COUNT', 1000, 'BLOCK', 200, 'STREAMS', key, last)) as [string, [string, string[]][]][] | null;
      for (const [id, fields] of res?.[0]?.[1] ?? []) {
        last = id;
        const e = JSON.parse(fields[1]!) as Omit<Event, 'at'>;
        if (e.type === 'metrics' || e.type === 'ack') events.push({ ...e, at: Number(id.slice(0, id.indexOf('-'))) });
      }
    }
  })();
  return {
    events,
    async stop() {
      on = false;
      await loop;
      conn.disconnect();
    },
  };
}

/** Records/s count took in over [from, to] (epoch ms), each metrics window's records spread evenly over it. */
function rateOver(events: Event[], from: number, to: number): number {
  let n = 0;
  for (const e of events) {
    if (e.type !== 'metrics' || e.vertexId !== 'count' || !e.windowMs) continue;
    const overlap = Math.min(e.at, to) - Math.max(e.at - e.windowMs, from);
    if (overlap > 0) n += ((e.vertices?.count?.recordsIn ?? 0) * overlap) / e.windowMs;
  }
  return (n * 1000) / (to - from);
}

/** One checkpoint, measured. */
async function measureCheckpoint(stack: Stack, jobId: string, events: Event[]) {
  const triggered = await stack.client.triggerCheckpoint(jobId);
  const done = await waitFor(
    async () => {
      const c = (await stack.client.listCheckpoints(jobId)).find((x) => x.id === triggered.id);
      if (c?.status === 'FAILED') throw new Error(`checkpoint ${c.number} failed: ${c.failureReason}`);
      return c?.status === 'COMPLETED' && c;
    },
    120_000,
    `checkpoint ${triggered.number} to complete`,
  );
  // Its acknowledgements, and a second of metrics after it (the dip's tail), reach the events stream.
  await sleep(2000);
  const trigger = Date.parse(done.triggeredAt);
  const completed = Date.parse(done.completedAt!);
  const acks = events.filter((e) => e.type === 'ack' && e.checkpointId === done.id);
  const ackOf = (vertexId: string) => acks.filter((a) => a.vertexId === vertexId);
  const rel = (t: number) => Math.round(t - trigger);
  // Where each subtask's barrier aligned: its acknowledgement less its async and sync parts.
  const alignedAt = (a: Event) => a.at - a.asyncMs! - a.syncMs!;
  const sources = ackOf('events');
  const counts = ackOf('count');
  const breakdown = {
    firstSourceBarrierMs: rel(Math.min(...sources.map(alignedAt))),
    lastSourceBarrierMs: rel(Math.max(...sources.map(alignedAt))),
    countFirstBarrierMs: rel(Math.min(...counts.map((a) => alignedAt(a) - a.alignmentMs!))),
    countAlignedMs: rel(Math.max(...counts.map(alignedAt))),
    countAlignmentMs: Math.max(...counts.map((a) => a.alignmentMs!)),
    countSyncMs: Math.max(...counts.map((a) => a.syncMs!)),
    countAsyncMs: Math.max(...counts.map((a) => a.asyncMs!)),
    lastAckMs: rel(Math.max(...acks.map((a) => a.at))),
    completedMs: rel(completed),
  };
  const steady = rateOver(events, trigger - STEADY_MS, trigger);
  const during = rateOver(events, trigger, Math.max(completed, trigger + 1000));
  let worst = Infinity;
  for (let t = trigger - 1000; t + 1000 <= Math.max(completed, trigger + 1000) + 1000; t += 100)
    worst = Math.min(worst, rateOver(events, t, t + 1000));
  return {
    number: done.number,
    id: done.id,
    durationMs: done.durationMs!,
    bytes: done.bytes,
    acks: acks.length,
    breakdown,
    steadyPerSec: Math.round(steady),
    duringPerSec: Math.round(during),
    worstSecondPerSec: Math.round(worst),
    dip: Number((1 - during / steady).toFixed(3)),
    worstSecondDip: Number((1 - worst / steady).toFixed(3)),
  };
}

/** The parts of count subtask 0's checkpoint write, again and alone, on the state of a completed checkpoint. */
async function writeParts(stack: Stack, databaseUrl: string, checkpointId: number, maxParallelism: number) {
  const range = rangeFor(0, P, maxParallelism);
  const storage = new CheckpointStorage(databaseUrl);
  const t0 = performance.now();
  const stored = await storage.read(checkpointId, 'count', 'KEYED', range.start, range.end);
  const readMs = performance.now() - t0;
  const backend = new KeyedStateBackend(maxParallelism);
  for (const c of stored) backend.restore(c.part, c.data);
  let t = performance.now();
  const parts = backend.snapshot(keyGroupsOf(range));
  const serializeMs = performance.now() - t;
  const chunks = [...parts].map(([part, data]) => ({ vertexId: 'count-bench', scope: 'KEYED' as const, part, data }));
  const bytes = chunks.reduce((s, c) => s + c.data.byteLength, 0);
  t = performance.now();
  await storage.write(checkpointId, chunks);
  const writeMs = performance.now() - t;
  await storage.close();
  // What the storage did before: Prisma createMany, 500 rows a statement.
  t = performance.now();
  for (let i = 0; i < chunks.length; i += 500)
    await stack.prisma.stateChunk.createMany({
      data: chunks.slice(i, i + 500).map((c) => ({ checkpointId, ...c, vertexId: 'count-bench-prisma', data: new Uint8Array(c.data) })),
    });
  const createManyMs = performance.now() - t;
  // The same rows through the server's binary COPY, to and from a file of the server's: no client, no encoding.
  const file = '/tmp/keyflow-bench-checkpoint.bin';
  const rows = `"StateChunk" WHERE "checkpointId" = ${checkpointId} AND "vertexId" = 'count-bench'`;
  const [{ size }] = await stack.prisma.$queryRawUnsafe<[{ size: number }]>(`SELECT sum(pg_column_size(data))::int AS size FROM ${rows}`);
  await stack.prisma.$executeRawUnsafe(
    `COPY (SELECT "checkpointId", 'count-bench-copy', scope, part, data FROM ${rows}) TO '${file}' (FORMAT binary)`,
  );
  t = performance.now();
  await stack.prisma.$executeRawUnsafe(`COPY "StateChunk" FROM '${file}' (FORMAT binary)`);
  const copyMs = performance.now() - t;
  // Again into a copy of the table with Postgres's default storage, which compresses the bytes with pglz (the chunk
  // table stores them uncompressed: EXTERNAL).
  const compressed = `"bench_chunks_${stack.prefix}"`;
  await stack.prisma.$executeRawUnsafe(`CREATE TABLE ${compressed} (LIKE "StateChunk" INCLUDING ALL)`);
  await stack.prisma.$executeRawUnsafe(`ALTER TABLE ${compressed} ALTER COLUMN data SET STORAGE EXTENDED`);
  t = performance.now();
  await stack.prisma.$executeRawUnsafe(`COPY ${compressed} FROM '${file}' (FORMAT binary)`);
  const copyCompressedMs = performance.now() - t;
  await stack.prisma.$executeRawUnsafe(`DROP TABLE ${compressed}`);
  await stack.prisma.$executeRawUnsafe(`COPY (SELECT 1 WHERE false) TO '${file}'`);
  await stack.prisma.stateChunk.deleteMany({ where: { checkpointId, vertexId: { in: ['count-bench', 'count-bench-copy', 'count-bench-prisma'] } } });
  return {
    keyGroups: chunks.length,
    keys: backend.keyCount(),
    bytes,
    storedBytes: size,
    serializeMs: Math.round(serializeMs),
    readMs: Math.round(readMs),
    writeMs: Math.round(writeMs),
    createManyMs: Math.round(createManyMs),
    copyMs: Math.round(copyMs),
    copyCompressedMs: Math.round(copyCompressedMs),
  };
}

async function run() {
  const stack = await startStack({ workers: P, slots: 2 });
  const watch = watchEvents(stack);
  try {
    const pipeline = await stack.client.createPipeline({ name: `bench-checkpoint-${stack.prefix}`, graph });
    const job = await stack.client.deployJob({ pipelineId: pipeline.id, checkpointIntervalMs: 3_600_000 });
    const t0 = performance.now();
    await waitFor(
      async () => ((await stack.client.getJob(job.id)).metrics?.vertices.count?.recordsIn ?? 0) >= KEYS * EVENTS_PER_KEY,
      600_000,
      `count to take in ${KEYS * EVENTS_PER_KEY} records`,
      1000,
    );
    const fillSec = Number(((performance.now() - t0) / 1000).toFixed(1));
    await sleep(WARMUP_MS);
    // A job's first checkpoint also pays for first uses (code paths, the storage's prepared queries): not measured.
    const first = await measureCheckpoint(stack, job.id, watch.events);
    const checkpoints = [];
    for (let i = 0; i < CHECKPOINTS; i++) {
      await sleep(GAP_MS);
      checkpoints.push(await measureCheckpoint(stack, job.id, watch.events));
      console.log(checkpoints.at(-1));
    }
    const detail = await stack.client.getJob(job.id);
    if (detail.state !== 'RUNNING') throw new Error(`job is ${detail.state}: ${detail.failureReason}`);
    if (detail.attempt !== 1) throw new Error(`the job recovered during the run (attempt ${detail.attempt})`);
    await stack.client.cancelJob(job.id);
    const write = await writeParts(stack, dbUrl, checkpoints.at(-1)!.id, detail.plan.vertices.count!.maxParallelism);
    console.log('count subtask 0, alone:', write);
    return { fillSec, firstCheckpointMs: first.durationMs, checkpoints, write };
  } finally {
    await watch.stop();
    await stack.close();
  }
}

const dbUrl = await benchDatabase();
try {
  const runs: ({ loadBefore: number } & Awaited<ReturnType<typeof run>>)[] = [];
  for (let i = 0; i < RUNS; i++) {
    const loadBefore = Number(loadavg()[0]!.toFixed(2));
    runs.push({ loadBefore, ...(await run()) });
  }
  const all = runs.flatMap((r) => r.checkpoints);
  const of = (f: (c: (typeof all)[number]) => number, digits = 0) => stats(all.map(f), digits);
  const ofWrite = (f: (w: (typeof runs)[number]['write']) => number) =>
    stats(
      runs.map((r) => f(r.write)),
      0,
    );
  const result = {
    ...machine(),
    keys: KEYS,
    parallelism: P,
    sourceRate: RATE,
    sink: SINK,
    targetMs: TARGET_MS,
    targetDip: TARGET_DIP,
    runs,
    durationMs: of((c) => c.durationMs),
    bytes: of((c) => c.bytes),
    /** ms after the trigger, or the part's own length (alignment, sync, async). */
    breakdown: Object.fromEntries(Object.keys(all[0]!.breakdown).map((k) => [k, of((c) => c.breakdown[k as keyof typeof c.breakdown])])),
    steadyPerSec: of((c) => c.steadyPerSec),
    duringPerSec: of((c) => c.duringPerSec),
    dip: of((c) => c.dip, 3),
    worstSecondDip: of((c) => c.worstSecondDip, 3),
    writeAlone: {
      bytes: ofWrite((w) => w.bytes),
      storedBytes: ofWrite((w) => w.storedBytes),
      serializeMs: ofWrite((w) => w.serializeMs),
      readMs: ofWrite((w) => w.readMs),
      writeMs: ofWrite((w) => w.writeMs),
      createManyMs: ofWrite((w) => w.createManyMs),
      copyMs: ofWrite((w) => w.copyMs),
      copyCompressedMs: ofWrite((w) => w.copyCompressedMs),
    },
  };
  const f = spread;
  console.log(
    `median (min–max) of ${all.length} checkpoints of ${KEYS.toLocaleString('en')} keys: ${f(result.durationMs)} ms end to end (target ≤ ${TARGET_MS}), ` +
      `${f(result.bytes)} bytes; dip ${f(result.dip)} over the checkpoint, ${f(result.worstSecondDip)} in its worst second (target ≤ ${TARGET_DIP})`,
  );
  console.log('breakdown:', result.breakdown, 'write alone:', result.writeAlone);
  writeResult('checkpoint.json', result);
} finally {
  await dropDatabase(dbUrl);
}
process.exit(0);
