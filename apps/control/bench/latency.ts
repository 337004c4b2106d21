// Benchmark (not a test): end-to-end latency of `generator (p=2) → keyBy(user) → count → stamp → Redis Streams sink`
// (count, stamp and sink chained, p=2, the sink at-least-once; 100,000 uniform keys; a checkpoint every
// BENCH_CHECKPOINT_MS, 10 s) at half the pipeline's maximum sustainable rate. Per run, on a fresh stack: the maximum
// rate is the pipeline's own, unbounded (rate 0), over BENCH_RATE_MS after the warm-up (the lower of what `count` took
// in and what the sink stream took in), unless BENCH_MAX_RATE gives it; then, on another fresh stack, the generator
// runs at half that rate with ingestion-time timestamps (the source stamps each record with the wall clock when it
// emits it). `stamp` is a user operator defined below and loaded by the workers (KEYFLOW_OPERATORS = this file): it
// copies the record's event time into a field, so the source's stamp reaches the sink. A record's latency is its sink
// stream entry's id (Redis's clock, ms: when the sink's XADD ran) minus that stamp (the worker's clock, ms; one
// machine, one clock). After BENCH_WARMUP_MS and once the source caught up with its rate, every record it emitted in
// the next BENCH_MEASURE_MS counts: p50/p90/p99/max; the job is then stopped with a savepoint (all its sources emitted
// is then in the sink stream) and the stream read, so that reading it takes nothing from the pipeline meanwhile.
// BENCH_RUNS (3) fresh runs, median with min and max.
// Writes docs/benchmarks/latency.json.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineOperator, registerOperator, type GraphInput } from '@keyflow/core';
import { z } from 'zod';

/** Copies the record's event time (with ingestion time: when the source emitted it) into `emittedAt`. */
export const stamp = defineOperator({
  kind: 'benchStamp',
  title: 'Stamp (benchmark)',
  description: "Adds emittedAt: the record's event time",
  settings: z.object({}).strict(),
  inputs: 'any',
  outputFields: (_settings, input) => input && [...input, 'emittedAt'],
  process(record, ctx) {
    ctx.emit({ ...record, emittedAt: ctx.timestamp ?? null });
  },
});

const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 20_000);
/** How long the unbounded run is measured for the maximum rate. */
const RATE_MS = Number(process.env.BENCH_RATE_MS ?? 10_000);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 30_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CHECKPOINT_MS = Number(process.env.BENCH_CHECKPOINT_MS ?? 10_000);
const MAX_RATE = process.env.BENCH_MAX_RATE ? Number(process.env.BENCH_MAX_RATE) : undefined;
const KEYS = 100_000;
const P = 2;
/**
 * The sink stream is trimmed to about this many entries: what `rate` adds in the window and 45 s more (about 70 bytes
 * an entry in Redis: 640 MB at 122,000 records/s). The job stops within seconds of the window's end, and the stream
 * must still hold the window whole then (checked).
 */
const keep = (rate: number) => Math.max(1_000_000, Math.ceil((rate * (MEASURE_MS + 45_000)) / 1000));
const TARGET_P99_MS = 20;

const self = fileURLToPath(import.meta.url);

const graph = (rate: number, stream: string): GraphInput => ({
  vertices: [
    {
      id: 'events',
      type: 'generator',
      parallelism: P,
      settings: { seed: 5, rate, keys: KEYS, skew: 'uniform', splits: 16, timestamps: 'ingestion' },
    },
    { id: 'count', type: 'count', parallelism: P },
    { id: 'stamp', type: 'benchStamp', parallelism: P },
    { id: 'sink', type: 'redisStreamSink', parallelism: P, settings: { stream, maxLen: keep(rate), delivery: 'at-least-once' } },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'stamp', partitioning: 'forward' },
    { from: 'stamp', to: 'sink', partitioning: 'forward' },
  ],
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The p-quantile of sorted values (nearest rank). */
const quantile = (sorted: Float64Array, p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;

async function main(): Promise<void> {
  // Loaded here, not at the top: the workers import this file for `stamp` alone, without the stack and the database.
  const { dropDatabase } = await import('@keyflow/db/testing');
  const { startStack } = await import('../test/harness.ts');
  const { benchDatabase, benchPool, machine, spread, stats, writeResult } = await import('./setup.ts');
  // The pool: BENCH_WORKERS processes (p) of BENCH_SLOTS slots (2) each.
  const pool = benchPool();
  type Stack = Awaited<ReturnType<typeof startStack>>;

  // The version the workers compute for this file; the control plane (this process) registers it as theirs.
  registerOperator(stamp, `${stamp.kind}@${createHash('sha256').update(readFileSync(self)).digest('hex').slice(0, 12)}`);

  /**
   * Deploys the pipeline at `rate` (0: unbounded) on a fresh stack and hands it to `measure`; refuses a run that
   * recovered. `end` checks that, then ends the job: canceled, or with `drain`, stopped with a savepoint, so that every
   * record its sources emitted is in the sink's stream (they emit the savepoint's barrier last, and the savepoint
   * completes once the sinks have written all before it). `measure` may call it; it is called after, if not.
   */
  async function withJob<T>(
    rate: number,
    measure: (stack: Stack, jobId: string, stream: string, end: (opts?: { drain: boolean }) => Promise<void>) => Promise<T>,
  ): Promise<T> {
    const stack = await startStack({ workers: pool.workers ?? P, slots: pool.slots, workerEnv: { KEYFLOW_OPERATORS: self } });
    const stream = `${stack.prefix}:bench-latency-out`;
    try {
      const pipeline = await stack.client.createPipeline({ name: `bench-latency-${stack.prefix}`, graph: graph(rate, stream) });
      const job = await stack.client.deployJob({ pipelineId: pipeline.id, checkpointIntervalMs: CHECKPOINT_MS });
      let ended = false;
      const end = async ({ drain } = { drain: false }) => {
        if (ended) return;
        ended = true;
        const detail = await stack.client.getJob(job.id);
        if (detail.state !== 'RUNNING') throw new Error(`job is ${detail.state}: ${detail.failureReason}`);
        if (detail.attempt !== 1) throw new Error(`the job recovered during the run (attempt ${detail.attempt})`);
        if (!drain) {
          await stack.client.cancelJob(job.id);
          return;
        }
        await stack.client.stopJob(job.id);
        const deadline = Date.now() + 120_000;
        for (let state = 'STOPPING'; state !== 'STOPPED'; state = (await stack.client.getJob(job.id)).state) {
          if (state !== 'STOPPING' && state !== 'RUNNING') throw new Error(`the job did not stop with a savepoint: it is ${state}`);
          if (Date.now() > deadline) throw new Error(`the job did not stop with a savepoint in 2 minutes: it is ${state}`);
          await sleep(200);
        }
      };
      const result = await measure(stack, job.id, stream, end);
      await end();
      return result;
    } finally {
      await stack.redis.del(stream);
      await stack.close();
    }
  }

  /** Entries the sink stream took in so far (trimming does not lower it). */
  const entriesAdded = async (stack: Stack, stream: string) => {
    const info = (await stack.redis.xinfo('STREAM', stream).catch(() => [])) as unknown[];
    return Number(info[info.indexOf('entries-added') + 1] ?? 0);
  };

  /** Records/s into `count` and into the sink stream over RATE_MS, unbounded, after the warm-up. */
  const maxRate = () =>
    withJob(0, async (stack, jobId, stream) => {
      const read = async () => ({
        counted: (await stack.client.getJob(jobId)).metrics?.vertices.count?.recordsIn ?? 0,
        added: await entriesAdded(stack, stream),
      });
      await sleep(WARMUP_MS);
      const a = await read();
      const t0 = performance.now();
      await sleep(RATE_MS);
      const b = await read();
      const s = (performance.now() - t0) / 1000;
      return { counted: (b.counted - a.counted) / s, sunk: (b.added - a.added) / s };
    });

  /**
   * Latencies of every record the source emitted within the measured window, ms, sorted. The sink stream is read once
   * the window is over, from the window's start: an entry's id is when the sink added it, whenever it is read, and a
   * reader beside the pipeline (ioredis decoding every entry, in this process with the control plane) would take a
   * share of the two cores from what it measures. The job is stopped first: what is read is all there will be, and the
   * stream is trimmed no more.
   */
  const latencies = (rate: number) =>
    withJob(rate, async (stack, _jobId, stream, end) => {
      await sleep(WARMUP_MS);
      // A source that fell behind (its consumers started after it) emits as fast as it can until it caught up, and its
      // records queue in full channels: the window starts once the sink takes in no more than the rate.
      const t0 = performance.now();
      for (;;) {
        const a = await entriesAdded(stack, stream);
        await sleep(2000);
        if ((await entriesAdded(stack, stream)) - a <= 2 * rate * 1.05) break;
        if (performance.now() - t0 > 120_000) throw new Error(`the source did not catch up with ${rate} records/s in 2 minutes`);
      }
      const caughtUpMs = Math.round(performance.now() - t0);
      // The window, in source stamps. A record emitted within it reached the sink after its start (one machine, one
      // clock): reading from there finds them all.
      const from = Date.now();
      await sleep(MEASURE_MS);
      const to = Date.now();
      // Stopped with a savepoint, the job has written all its sources emitted to the stream, and the stream is no longer
      // trimmed: reading it races with nothing.
      await end({ drain: true });
      // Trimming only ever drops the oldest: if the oldest left is older than the window, nothing of it was dropped.
      const oldest = (await stack.redis.xrange(stream, '-', '+', 'COUNT', 1))[0]?.[0];
      if (!oldest || Number(oldest.slice(0, oldest.indexOf('-'))) >= from)
        throw new Error('the sink stream was trimmed into the window before the job stopped: raise `keep`');
      const values: number[] = [];
      for (let start = `${from}-0`; ;) {
        const entries = await stack.redis.xrange(stream, start, '+', 'COUNT', 20_000);
        if (!entries.length) break;
        for (const [id, fields] of entries) {
          const json = fields[1]!;
          const at = json.lastIndexOf('"emittedAt":');
          const emitted = Number(json.slice(at + 12, json.indexOf('}', at)));
          if (emitted >= from && emitted < to) values.push(Number(id.slice(0, id.indexOf('-'))) - emitted);
        }
        start = `(${entries[entries.length - 1]![0]}`;
      }
      return { sorted: Float64Array.from(values).sort(), windowMs: to - from, caughtUpMs };
    });

  const dbUrl = await benchDatabase();
  try {
    const runs: {
      loadBefore: number;
      maxRate: number;
      maxRateCount?: number;
      maxRateSink?: number;
      rate: number;
      /** How long after the warm-up the source had caught up (the window's start). */
      caughtUpMs: number;
      /** Records/s the source emitted within the window: above `rate`, it was catching up on a backlog. */
      emittedPerSec: number;
      records: number;
      p50: number;
      p90: number;
      p99: number;
      max: number;
    }[] = [];
    for (let i = 0; i < RUNS; i++) {
      const loadBefore = Number(loadavg()[0]!.toFixed(2));
      const measured = MAX_RATE === undefined ? await maxRate() : undefined;
      const max = MAX_RATE ?? Math.min(measured!.counted, measured!.sunk);
      const rate = Math.round(max / 2);
      const { sorted, windowMs, caughtUpMs } = await latencies(rate);
      runs.push({
        loadBefore,
        maxRate: Math.round(max),
        ...(measured && { maxRateCount: Math.round(measured.counted), maxRateSink: Math.round(measured.sunk) }),
        rate,
        caughtUpMs,
        emittedPerSec: Math.round((sorted.length * 1000) / windowMs),
        records: sorted.length,
        p50: quantile(sorted, 0.5),
        p90: quantile(sorted, 0.9),
        p99: quantile(sorted, 0.99),
        max: sorted[sorted.length - 1]!,
      });
      console.log(`run ${i + 1}:`, runs.at(-1));
    }
    const of = (f: (r: (typeof runs)[number]) => number) => stats(runs.map(f), 0);
    const result = {
      ...machine(),
      keys: KEYS,
      parallelism: P,
      warmupMs: WARMUP_MS,
      checkpointIntervalMs: CHECKPOINT_MS,
      rateMs: RATE_MS,
      measureMs: MEASURE_MS,
      targetP99Ms: TARGET_P99_MS,
      runs,
      maxRecordsPerSec: of((r) => r.maxRate),
      recordsPerSec: of((r) => r.rate),
      latencyMsP50: of((r) => r.p50),
      latencyMsP90: of((r) => r.p90),
      latencyMsP99: of((r) => r.p99),
      latencyMsMax: of((r) => r.max),
    };
    const f = spread;
    console.log(
      `median (min–max) of ${RUNS}, at ${f(result.recordsPerSec)} records/s (half of ${f(result.maxRecordsPerSec)}): latency p50 ${f(result.latencyMsP50)}, ` +
        `p90 ${f(result.latencyMsP90)}, p99 ${f(result.latencyMsP99)}, max ${f(result.latencyMsMax)} ms (target p99 ≤ ${TARGET_P99_MS} ms)`,
    );
    writeResult('latency.json', result);
  } finally {
    await dropDatabase(dbUrl);
  }
}

// Run as a script; imported (by a worker, for `stamp`), it only defines the operator.
if (process.argv[1] && resolve(process.argv[1]) === self) {
  await main();
  process.exit(0);
}
