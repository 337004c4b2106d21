// Benchmark (not a test): the keyed-count pipeline unbounded at p=1 and p=2 on the local stack, and in the same
// run a bare single-process loop doing the same generation and counting, and the same pipeline hand-written on Redis
// Streams without Keyflow (handWritten.ts); BENCH_RUNS (3) fresh runs of each, median with min and max.
// BENCH_PARALLELISMS (1,2) picks the pipeline runs. `--redis-delay-ms <D>`: the workers and the hand-written
// processes reach Redis through a proxy that delays each direction by D ms (Redis 2·D of round trip away; the
// control plane stays direct). Writes docs/benchmarks/keyed-count.json.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EventGenerator, type GraphInput } from '@keyflow/core';
import { dropDatabase } from '@keyflow/db/testing';
import { Redis } from 'ioredis';
import { startStack, type Stack } from '../test/harness.ts';
import { startDelayProxy } from './delayProxy.ts';
import { benchDatabase, benchPool, machine, stats, writeResult } from './setup.ts';

const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 15000);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 20000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PARALLELISMS = (process.env.BENCH_PARALLELISMS ?? '1,2').split(',').map(Number);
if (!PARALLELISMS.every((p) => p === 1 || p === 2)) throw new Error(`BENCH_PARALLELISMS lists 1, 2 or both, not '${process.env.BENCH_PARALLELISMS}'`);
const KEYS = 50_000;
/** The pool: BENCH_WORKERS processes (default p) of BENCH_SLOTS slots (default 2). */
const POOL = benchPool();
const settings = { seed: 3, rate: 0, keys: KEYS, skew: 'zipf', splits: 16 } as const;
const { values: args } = parseArgs({ options: { 'redis-delay-ms': { type: 'string' } } });
const DELAY_MS = args['redis-delay-ms'] === undefined ? undefined : Number(args['redis-delay-ms']);
if (DELAY_MS !== undefined && !(DELAY_MS >= 0)) throw new Error(`--redis-delay-ms takes a number of ms, not '${args['redis-delay-ms']}'`);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

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

/** Each subtask's busy and backpressured shares (Flink's), averaged over the looks at the job in the measure window. */
type Shares = Record<string, { busy: number; backpressure: number }>;

/** Looks at the job's metrics once a second until `until`, and averages each subtask's shares over the looks. */
async function sampleShares(stack: Stack, jobId: string, until: number): Promise<Shares> {
  const sums = new Map<string, { busy: number; backpressure: number; n: number }>();
  while (performance.now() < until - 1000) {
    await sleep(1000);
    for (const s of (await stack.client.getJob(jobId)).metrics?.subtasks ?? []) {
      const key = `${s.vertexId}#${s.index}`;
      const sum = sums.get(key) ?? { busy: 0, backpressure: 0, n: 0 };
      sums.set(key, { busy: sum.busy + s.busy, backpressure: sum.backpressure + s.backpressure, n: sum.n + 1 });
    }
  }
  await sleep(Math.max(0, until - performance.now()));
  const round = (x: number) => Math.round(x * 100) / 100;
  return Object.fromEntries([...sums].sort().map(([k, v]) => [k, { busy: round(v.busy / v.n), backpressure: round(v.backpressure / v.n) }]));
}

async function pipelineRate(p: number, workerRedisUrl: string): Promise<{ rate: number; shares: Shares }> {
  // One worker process per subtask pair, one slot each per subtask of the pair, unless BENCH_WORKERS and BENCH_SLOTS say otherwise.
  const stack = await startStack({ workers: POOL.workers ?? p, slots: POOL.slots, workerEnv: { REDIS_URL: workerRedisUrl } });
  try {
    const pipeline = await stack.client.createPipeline({ name: `bench-p${p}-${stack.prefix}`, graph: graph(p) });
    const job = await stack.client.deployJob({ pipelineId: pipeline.id, checkpointIntervalMs: 10_000 });
    const counted = async () => (await stack.client.getJob(job.id)).metrics?.vertices.count?.recordsIn ?? 0;
    await sleep(WARMUP_MS);
    const a = await counted();
    const t0 = performance.now();
    const shares = await sampleShares(stack, job.id, t0 + MEASURE_MS);
    const b = await counted();
    const rate = ((b - a) * 1000) / (performance.now() - t0);
    // A figure counts only if the job ran through the window as it started: no recovery replayed records into it.
    const detail = await stack.client.getJob(job.id);
    if (detail.state !== 'RUNNING') throw new Error(`job is ${detail.state}: ${detail.failureReason}`);
    const recovered = detail.events.find((e) => e.toState === 'RECOVERING');
    if (detail.attempt !== 1 || recovered) throw new Error(`the job recovered during the run (${recovered?.reason ?? `attempt ${detail.attempt}`})`);
    await stack.client.cancelJob(job.id);
    return { rate, shares };
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

/**
 * The hand-written pipeline (handWritten.ts): two consumer processes and one producer, through `redisUrl`; records
 * both consumers counted per second over the measure window, after the same warm-up.
 */
async function handWrittenRate(redisUrl: string): Promise<number> {
  const base = `${process.env.KEYFLOW_PREFIX}:hand:${randomBytes(3).toString('hex')}`;
  const redis = new Redis(REDIS_URL);
  const children: ChildProcess[] = [];
  let failure: Error | undefined;
  let stopping = false;
  const start = (role: 'producer' | 'consumer', arg: string) => {
    const child = fork(fileURLToPath(new URL('handWritten.ts', import.meta.url)), [role, redisUrl, base, arg], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      execArgv: ['--import', 'tsx'],
    });
    child.on('exit', (code, signal) => {
      if (!stopping) failure ??= new Error(`hand-written ${role} exited (${code ?? signal})`);
    });
    children.push(child);
  };
  const counted = async () => (await redis.mget(`${base}:counted:0`, `${base}:counted:1`)).reduce((sum, n) => sum + Number(n ?? 0), 0);
  try {
    start('consumer', '0');
    start('consumer', '1');
    start('producer', JSON.stringify({ ...settings, zipfExponent: 1 }));
    await sleep(WARMUP_MS);
    const a = await counted();
    const t0 = performance.now();
    await sleep(MEASURE_MS);
    const b = await counted();
    const rate = ((b - a) * 1000) / (performance.now() - t0);
    if (failure) throw failure;
    return rate;
  } finally {
    stopping = true;
    await Promise.all(
      children.map((c) =>
        c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((resolve) => c.once('exit', resolve).kill()),
      ),
    );
    const keys = await redis.keys(`${base}:*`);
    if (keys.length) await redis.unlink(...keys);
    redis.disconnect();
  }
}

const direct = new URL(REDIS_URL);
const proxy =
  DELAY_MS === undefined
    ? undefined
    : await startDelayProxy({ target: { host: direct.hostname, port: Number(direct.port || 6379) }, delayMs: DELAY_MS });
/** How the workers and the hand-written processes reach Redis. */
const farRedisUrl = proxy?.url(Number(direct.pathname.slice(1) || 0)) ?? REDIS_URL;
const dbUrl = await benchDatabase();
try {
  const runs: { loadBefore: number; p1?: number; p2?: number; bare: number; handWritten: number; shares: Record<string, Shares> }[] = [];
  const n = (x: number) => Math.round(x).toLocaleString('en');
  for (let i = 0; i < RUNS; i++) {
    const loadBefore = Number(loadavg()[0]!.toFixed(2));
    const pipelines: { p1?: number; p2?: number } = {};
    const shares: Record<string, Shares> = {};
    for (const p of PARALLELISMS) {
      const run = await pipelineRate(p, farRedisUrl);
      pipelines[`p${p as 1 | 2}`] = Math.round(run.rate);
      shares[`p${p}`] = run.shares;
      const each = Object.entries(run.shares).map(([k, v]) => `${k} ${Math.round(v.busy * 100)}% busy, ${Math.round(v.backpressure * 100)}% bp`);
      console.log(`  p=${p}: ${each.join('; ')}`);
    }
    const bare = Math.round(bareLoopRate());
    const handWritten = Math.round(await handWrittenRate(farRedisUrl));
    runs.push({ loadBefore, ...pipelines, bare, handWritten, shares });
    const ps = PARALLELISMS.map((p) => `p=${p} ${n(pipelines[`p${p as 1 | 2}`]!)}`).join(', ');
    console.log(`run ${i + 1}: ${ps}, bare loop ${n(bare)}, hand-written ${n(handWritten)} records/s`);
  }
  const of = (pick: (r: (typeof runs)[number]) => number | undefined, digits: number) => {
    const xs = runs.map(pick).filter((x) => x !== undefined);
    return xs.length ? stats(xs, digits) : undefined;
  };
  const [p1, p2, bare, handWritten] = [of((r) => r.p1, 0), of((r) => r.p2, 0), of((r) => r.bare, 0)!, of((r) => r.handWritten, 0)!];

  const result = {
    ...machine(),
    measureMs: MEASURE_MS,
    keys: KEYS,
    /** Each way between the workers (and the hand-written processes) and Redis, through a delay proxy; null: direct. */
    redisDelayMs: DELAY_MS ?? null,
    runs,
    recordsPerSecP1: p1,
    recordsPerSecP2: p2,
    recordsPerSecBareLoop: bare,
    recordsPerSecHandWritten: handWritten,
    /** p=2 / bare loop within each run, then median, min and max of those. */
    ratioP2ToBareLoop: of((r) => r.p2 && r.p2 / r.bare, 3),
    /** p=2 / hand-written within each run, then median, min and max of those. */
    ratioP2ToHandWritten: of((r) => r.p2 && r.p2 / r.handWritten, 3),
  };
  const f = (x: ReturnType<typeof stats> | undefined) =>
    x ? `${x.median.toLocaleString('en')} (${x.min.toLocaleString('en')}–${x.max.toLocaleString('en')})` : 'not run';
  console.log(
    `median (min–max) of ${RUNS}${DELAY_MS === undefined ? '' : `, Redis ${DELAY_MS} ms away each way`}: p=1 ${f(p1)}, p=2 ${f(p2)}, bare loop ${f(bare)}, hand-written ${f(handWritten)} records/s; p=2 / bare loop ${result.ratioP2ToBareLoop?.median}, p=2 / hand-written ${result.ratioP2ToHandWritten?.median}`,
  );
  writeResult('keyed-count.json', result);
} finally {
  await dropDatabase(dbUrl);
  await proxy?.close();
}
process.exit(0);
