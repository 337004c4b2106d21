// Benchmark (not a test): the Nexmark queries of the builder's templates at p=1 and p=2, unbounded source, into the
// blackhole sink (as nexmark-flink runs them). Each query: a warm-up, then events/s over a measured window, counted
// at the source (every event id it passed, whatever its kind); a run counts only if the job did not recover during
// it. BENCH_RUNS (3) runs, median with min and max; events/s per core = events/s ÷ parallelism (one worker process per
// subtask slot set, one core each), beside Flink's published per-core figures. Writes docs/benchmarks/nexmark.json.
//
//   npm run bench:nexmark                      every query, p=1 and p=2
//   NEXMARK_QUERIES=q0,q5 BENCH_PARALLELISMS=2 npm run bench:nexmark
import { loadavg } from 'node:os';
import { NEXMARK_QUERIES, nexmarkQuery, type GraphInput, type NexmarkQuery } from '@keyflow/core';
import { dropDatabase } from '@keyflow/db/testing';
import { startStack, type Stack } from '../test/harness.ts';
import { benchDatabase, machine, NEXMARK_SOURCE, stats, writeResult } from './setup.ts';

const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 10_000);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 15_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PARALLELISMS = (process.env.BENCH_PARALLELISMS ?? '1,2').split(',').map(Number);
/** q0 over a source that emits every kind, dropping persons and auctions in a filter, as Flink's source does. */
const Q0_ALL = 'q0-all-kinds';
type Case = NexmarkQuery | typeof Q0_ALL;
const QUERIES = (process.env.NEXMARK_QUERIES?.split(',') ?? [...NEXMARK_QUERIES, Q0_ALL]) as Case[];

/** Flink's per-core throughput (nexmark GUIDE_V1: 8-core workers, events/s per core), the figure to beat. */
const FLINK_PER_CORE: Record<NexmarkQuery, number> = {
  q0: 155_000,
  q1: 158_000,
  q2: 175_000,
  q3: 152_000,
  q4: 34_000,
  q5: 22_000,
  q7: 12_000,
  q8: 146_000,
  q11: 40_000,
  q12: 76_000,
};

const SOURCE = NEXMARK_SOURCE;

function graphOf(c: Case, p: number): GraphInput {
  if (c !== Q0_ALL) return nexmarkQuery(c, { parallelism: p, sink: 'blackhole', source: SOURCE });
  return {
    vertices: [
      { id: 'events', type: 'nexmark', parallelism: p, settings: { ...SOURCE, kinds: 'all' } },
      { id: 'bids', type: 'filter', parallelism: p, settings: { field: 'type', op: 'eq', value: 'bid' } },
      { id: 'results', type: 'blackhole', parallelism: p },
    ],
    edges: [
      { from: 'events', to: 'bids', partitioning: 'forward' },
      { from: 'bids', to: 'results', partitioning: 'forward' },
    ],
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Events/s of one query: the slowest source's (a join is as far along as its slower side). */
async function measure(stack: Stack, c: Case, p: number): Promise<number> {
  const graph = graphOf(c, p);
  const sources = graph.vertices.filter((v) => v.type === 'nexmark').map((v) => v.id);
  const pipeline = await stack.client.createPipeline({ name: `nexmark-${c}-p${p}-${stack.prefix}`, graph });
  const job = await stack.client.deployJob({ pipelineId: pipeline.id, checkpointIntervalMs: 10_000 });
  const events = async () => {
    const m = (await stack.client.getJob(job.id)).metrics?.vertices;
    return Math.min(...sources.map((id) => m?.[id]?.recordsIn ?? 0));
  };
  await sleep(WARMUP_MS);
  const a = await events();
  const t0 = performance.now();
  await sleep(MEASURE_MS);
  const b = await events();
  const rate = ((b - a) * 1000) / (performance.now() - t0);
  const detail = await stack.client.getJob(job.id);
  if (detail.state !== 'RUNNING') throw new Error(`${c} p=${p}: job is ${detail.state}: ${detail.failureReason}`);
  const recovered = detail.events.find((e) => e.toState === 'RECOVERING');
  if (detail.attempt !== 1 || recovered)
    throw new Error(`${c} p=${p}: the job recovered during the run (${recovered?.reason ?? `attempt ${detail.attempt}`})`);
  const dead = Object.entries(detail.metrics?.vertices ?? {}).filter(([, m]) => m.deadLetters > 0);
  if (dead.length) throw new Error(`${c} p=${p}: dead letters in ${dead.map(([id]) => id).join(', ')}`);
  await stack.client.cancelJob(job.id);
  return rate;
}

const dbUrl = await benchDatabase();
try {
  const rates = new Map<string, number[]>();
  const loads: number[] = [];
  for (let run = 0; run < RUNS; run++)
    for (const p of PARALLELISMS) {
      loads.push(Number(loadavg()[0]!.toFixed(2)));
      // One worker process per core used; slots enough for the widest query (q3: three chains of p subtasks).
      const stack = await startStack({ workers: p, slots: 8 });
      try {
        for (const c of QUERIES) {
          const rate = await measure(stack, c, p);
          const key = `${c}|${p}`;
          rates.set(key, [...(rates.get(key) ?? []), Math.round(rate)]);
          console.log(
            `run ${run + 1}: ${c} p=${p} ${Math.round(rate).toLocaleString('en')} events/s (${Math.round(rate / p).toLocaleString('en')} per core)`,
          );
        }
      } finally {
        await stack.close();
      }
    }

  const queries = QUERIES.map((c) => {
    const flink = c === Q0_ALL ? FLINK_PER_CORE.q0 : FLINK_PER_CORE[c];
    const at = Object.fromEntries(
      PARALLELISMS.map((p) => {
        const runs = rates.get(`${c}|${p}`) ?? [];
        const eventsPerSec = stats(runs, 0);
        const perCore = stats(
          runs.map((r) => r / p),
          0,
        );
        return [`p${p}`, { runs, eventsPerSec, eventsPerSecPerCore: perCore, ratioToFlinkPerCore: Number((perCore.median / flink).toFixed(3)) }];
      }),
    );
    return { query: c, flinkEventsPerSecPerCore: flink, ...at };
  });
  const result = {
    ...machine(),
    warmupMs: WARMUP_MS,
    measureMs: MEASURE_MS,
    source: SOURCE,
    loadBefore: loads,
    notes: [
      'Events/s are counted at the source: every event id it passed, of any kind. A source that reads only bids (q0, q1, q2, q5, q7, q11, q12) skips generating persons and auctions; q0-all-kinds generates every event and filters, as Flink does.',
      "Per core = events/s ÷ parallelism. The control plane, Redis and Postgres run on the same 2 cores and are not counted; Flink's figures are per core of 8-core workers with their own machines for Kafka-less generation.",
      'Flink: nexmark GUIDE_V1 (Flink 1.13-era, 8-core workers), events/s per core.',
    ],
    queries,
  };
  for (const q of queries)
    console.log(
      `${q.query}: ${PARALLELISMS.map((p) => {
        const r = (q as unknown as Record<string, { eventsPerSecPerCore: { median: number }; ratioToFlinkPerCore: number }>)[`p${p}`]!;
        return `p=${p} ${r.eventsPerSecPerCore.median.toLocaleString('en')}/core (${r.ratioToFlinkPerCore}× Flink)`;
      }).join(', ')}`,
    );
  writeResult('nexmark.json', result);
} finally {
  await dropDatabase(dbUrl);
}
process.exit(0);
