// Benchmark (not a test): a tumbling 10 s count over 100,000 keys at p=2, event time = ingestion time, into the
// exactly-once Postgres sink (the defaults a user gets). Throughput: unbounded, records/s over a measured window
// after a warm-up, against the plain keyed count at p=2 on the same events in the same run. Latency: at a rate the
// job sustains (BENCH_LATENCY_RATE, 50,000/s), from each window's end to its rows' arrival in the sink table (p50/p99
// over rows, to the 100 ms poll); unbounded, queues would be full and the figure would be queueing. BENCH_RUNS (3)
// fresh runs of each, median with min and max. Writes docs/benchmarks/windows.json.
import type { GraphInput } from '@keyflow/core';
import { dropDatabase } from '@keyflow/db/testing';
import pg from 'pg';
import { startStack } from '../test/harness.ts';
import { benchDatabase, machine, stats, writeResult } from './setup.ts';

const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 15000);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 30000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const POLL_MS = 100;
const KEYS = 100_000;
const P = 2;
const LATENCY_RATE = Number(process.env.BENCH_LATENCY_RATE ?? 50_000);
const settings = (rate: number) => ({ seed: 3, rate, keys: KEYS, skew: 'zipf', splits: 16, timestamps: 'ingestion' }) as const;

const graph = (kind: 'window' | 'count', table: string, rate: number): GraphInput => ({
  vertices: [
    { id: 'events', type: 'generator', parallelism: P, settings: settings(rate) },
    kind === 'window'
      ? { id: 'op', type: 'window', parallelism: P, settings: { size: '10s', aggregates: 'count' } }
      : { id: 'op', type: 'count', parallelism: P },
    kind === 'window'
      ? { id: 'sink', type: 'postgres', parallelism: P, settings: { table, keyField: 'key, windowStart' } }
      : { id: 'sink', type: 'postgres', parallelism: P, settings: { table, valueField: 'count' } },
  ],
  edges: [
    { from: 'events', to: 'op', partitioning: 'hash', key: 'user' },
    { from: 'op', to: 'sink', partitioning: 'forward' },
  ],
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Rows per window end, as they arrive: each poll's new rows count at (poll time − window end). */
class ArrivalWatch {
  readonly latencies: [ms: number, rows: number][] = [];
  private readonly seen = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  constructor(
    private readonly client: pg.Client,
    private readonly table: string,
  ) {}
  start(): void {
    this.timer = setInterval(() => {
      this.polling ??= this.poll().finally(() => (this.polling = undefined));
    }, POLL_MS);
  }
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.polling;
  }
  private async poll(): Promise<void> {
    const { rows } = await this.client
      .query<{ e: string; n: string }>(`SELECT (value->>'windowEnd')::bigint AS e, count(*) AS n FROM "${this.table}" GROUP BY 1`)
      .catch(() => ({ rows: [] }));
    const at = Date.now();
    // The first poll only sees what was there before the watch began: a baseline, not arrivals.
    const baseline = !this.polled;
    this.polled = true;
    for (const r of rows) {
      const end = Number(r.e);
      const n = Number(r.n);
      const before = this.seen.get(end) ?? 0;
      if (n > before && !baseline) this.latencies.push([at - end, n - before]);
      this.seen.set(end, n);
    }
  }
  private polled = false;
  percentile(q: number): number {
    const sorted = [...this.latencies].sort((a, b) => a[0] - b[0]);
    const total = sorted.reduce((s, [, n]) => s + n, 0);
    let acc = 0;
    for (const [ms, n] of sorted) if ((acc += n) >= q * total) return ms;
    return NaN;
  }
}

async function run(kind: 'window' | 'count', i: number, sourceRate = 0): Promise<{ rate: number; p50?: number; p99?: number }> {
  const stack = await startStack({ workers: P, slots: 2 });
  const table = `bench_${kind}_${i}_${sourceRate}`;
  const client = new pg.Client({ connectionString: process.env.KEYFLOW_SINK_DATABASE_URL });
  await client.connect();
  try {
    const pipeline = await stack.client.createPipeline({ name: `bench-${kind}-${stack.prefix}`, graph: graph(kind, table, sourceRate) });
    const job = await stack.client.deployJob({ pipelineId: pipeline.id, checkpointIntervalMs: 1000 });
    const counted = async () => (await stack.client.getJob(job.id)).metrics?.vertices.op?.recordsIn ?? 0;
    await sleep(WARMUP_MS);
    const watch = sourceRate > 0 ? new ArrivalWatch(client, table) : undefined;
    watch?.start();
    const a = await counted();
    const t0 = performance.now();
    await sleep(MEASURE_MS);
    const b = await counted();
    await watch?.stop();
    const rate = ((b - a) * 1000) / (performance.now() - t0);
    const detail = await stack.client.getJob(job.id);
    if (detail.state !== 'RUNNING') throw new Error(`job is ${detail.state}: ${detail.failureReason}`);
    if (detail.attempt !== 1) throw new Error(`the job recovered during the run (attempt ${detail.attempt})`);
    await stack.client.cancelJob(job.id);
    return watch ? { rate, p50: watch.percentile(0.5), p99: watch.percentile(0.99) } : { rate };
  } finally {
    await client.end();
    await stack.close();
  }
}

const dbUrl = await benchDatabase();
try {
  const runs: { window: number; count: number; ratio: number; p50: number; p99: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const w = await run('window', i);
    const c = await run('count', i);
    const l = await run('window', i, LATENCY_RATE);
    runs.push({ window: Math.round(w.rate), count: Math.round(c.rate), ratio: Number((w.rate / c.rate).toFixed(3)), p50: l.p50!, p99: l.p99! });
    console.log(`run ${i + 1}:`, runs.at(-1));
  }
  const result = {
    ...machine(),
    keys: KEYS,
    parallelism: P,
    measureMs: MEASURE_MS,
    pollMs: POLL_MS,
    latencyRate: LATENCY_RATE,
    runs,
    windowRecordsPerSec: stats(
      runs.map((r) => r.window),
      0,
    ),
    keyedCountRecordsPerSec: stats(
      runs.map((r) => r.count),
      0,
    ),
    ratioWindowToKeyedCount: stats(
      runs.map((r) => r.ratio),
      3,
    ),
    latencyMsP50: stats(
      runs.map((r) => r.p50),
      0,
    ),
    latencyMsP99: stats(
      runs.map((r) => r.p99),
      0,
    ),
  };
  console.log(JSON.stringify(result, null, 2));
  writeResult('windows.json', result);
} finally {
  await dropDatabase(dbUrl);
}
process.exit(0);
