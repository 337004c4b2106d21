// Benchmark (not a test): the keyed-count pipeline unbounded at p=1 and p=2 on the local stack, and in the same
// run a bare single-process loop doing the same generation and counting; BENCH_RUNS (3) fresh runs of each, median
// with min and max. Writes docs/benchmarks/keyed-count.json.
import { writeFileSync, mkdirSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { EventGenerator, type GraphInput } from '@keyflow/core';
import { dropDatabase } from '@keyflow/db/testing';
import { startStack } from '../test/harness.ts';
import { benchDatabase, stats } from './setup.ts';

const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 15000);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 20000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const KEYS = 50_000;
const settings = { seed: 3, rate: 0, keys: KEYS, skew: 'zipf', splits: 16 } as const;

const graph = (p: number): GraphInput => ({
  vertices: [
    { id: 'events', type: 'generator', parallelism: p, settings },
    { id: 'count', type: 'count', parallelism: p },
    { id: 'sink', type: 'postgres', parallelism: p, settings: { table: `bench_counts_p${p}`, valueField: 'count' } },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'sink', partitioning: 'forward' },
  ],
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pipelineRate(p: number): Promise<number> {
  // One worker process per subtask pair, one slot each per subtask of the pair.
  const stack = await startStack({ workers: p, slots: 2 });
  try {
    const pipeline = await stack.client.createPipeline({ name: `bench-p${p}-${stack.prefix}`, graph: graph(p) });
    const job = await stack.client.deployJob({ pipelineId: pipeline.id, checkpointIntervalMs: 10_000 });
    const counted = async () => (await stack.client.getJob(job.id)).metrics?.vertices.count?.recordsIn ?? 0;
    await sleep(WARMUP_MS);
    const a = await counted();
    const t0 = performance.now();
    await sleep(MEASURE_MS);
    const b = await counted();
    const rate = ((b - a) * 1000) / (performance.now() - t0);
    // A figure counts only if the job ran through the window as it started: no recovery replayed records into it.
    const detail = await stack.client.getJob(job.id);
    if (detail.state !== 'RUNNING') throw new Error(`job is ${detail.state}: ${detail.failureReason}`);
    const recovered = detail.events.find((e) => e.toState === 'RECOVERING');
    if (detail.attempt !== 1 || recovered) throw new Error(`the job recovered during the run (${recovered?.reason ?? `attempt ${detail.attempt}`})`);
    await stack.client.cancelJob(job.id);
    return rate;
  } finally {
    await stack.close();
  }
}

/** The same generation and counting in one loop, no engine. */
function bareLoopRate(): number {
  const gen = new EventGenerator({ ...settings, zipfExponent: 1 });
  const counts = new Map<string, number>();
  let i = 0;
  const t0 = performance.now();
  const end = t0 + MEASURE_MS;
  while (performance.now() < end)
    for (let k = 0; k < 10_000; k++, i++) {
      const e = gen.eventAt(i);
      counts.set(e.user, (counts.get(e.user) ?? 0) + 1);
    }
  return (i * 1000) / (performance.now() - t0);
}

const dbUrl = await benchDatabase();
try {
  const runs: { loadBefore: number; p1: number; p2: number; bare: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const loadBefore = Number(loadavg()[0]!.toFixed(2));
    const p1 = await pipelineRate(1);
    const p2 = await pipelineRate(2);
    const bare = bareLoopRate();
    runs.push({ loadBefore, p1: Math.round(p1), p2: Math.round(p2), bare: Math.round(bare) });
    console.log(
      `run ${i + 1}: p=1 ${Math.round(p1).toLocaleString('en')}, p=2 ${Math.round(p2).toLocaleString('en')}, bare loop ${Math.round(bare).toLocaleString('en')} records/s`,
    );
  }
  const [p1, p2, bare] = [
    stats(
      runs.map((r) => r.p1),
      0,
    ),
    stats(
      runs.map((r) => r.p2),
      0,
    ),
    stats(
      runs.map((r) => r.bare),
      0,
    ),
  ];

  const result = {
    date: new Date().toISOString(),
    cores: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    measureMs: MEASURE_MS,
    keys: KEYS,
    runs,
    recordsPerSecP1: p1,
    recordsPerSecP2: p2,
    recordsPerSecBareLoop: bare,
    /** p=2 / bare loop within each run, then median, min and max of those. */
    ratioP2ToBareLoop: stats(
      runs.map((r) => r.p2 / r.bare),
      3,
    ),
  };
  const f = (x: ReturnType<typeof stats>) => `${x.median.toLocaleString('en')} (${x.min.toLocaleString('en')}–${x.max.toLocaleString('en')})`;
  console.log(
    `median (min–max) of ${RUNS}: p=1 ${f(p1)}, p=2 ${f(p2)}, bare loop ${f(bare)} records/s; p=2 / bare loop ${result.ratioP2ToBareLoop.median}`,
  );
  const out = fileURLToPath(new URL('../../../docs/benchmarks/', import.meta.url));
  mkdirSync(out, { recursive: true });
  writeFileSync(`${out}keyed-count.json`, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote docs/benchmarks/keyed-count.json`);
} finally {
  await dropDatabase(dbUrl);
}
process.exit(0);
