// Benchmark (not a test): what keyed count state costs a worker in memory, and whether a steady job grows.
//
// Bytes per key: `generator (p=2, N uniform keys, 5·N events: 99.3 % of the keys come up; the exact number of distinct
// keys is computed here) → keyBy(user) → count (p=2) → blackhole` (the log sink where no blackhole exists), each
// subtask in a worker process of its own (one slot each), for N = 1,000,000 and 10,000,000 (BENCH_KEYS). A second
// generator of one record a second keeps the job running once the first ended (a finished job drops its state), so the
// state is measured at rest. Workers report their own memory: started with --expose-gc and a preloaded handler, a
// worker sent SIGUSR2 collects garbage (a full GC) and prints process.memoryUsage() (rss, heapUsed). Bytes per key =
// Σ over both count workers (after − the same worker idle, before the deploy) / distinct keys, for RSS and for V8 heap
// used; the marginal cost between the two key counts leaves out what does not grow with keys. Checkpoints are off.
// BENCH_RUNS (3) fresh runs per key count, median with min and max.
//
// Leak check: the same pipeline unbounded at BENCH_LEAK_RATE records/s over BENCH_LEAK_KEYS (100,000) keys, with a
// checkpoint every 10 s, for BENCH_LEAK_MS (600,000); every BENCH_LEAK_SAMPLE_MS (10,000) each worker's RSS is read
// from /proc/<pid>/status (VmRSS), then its heap used after a full GC; the slope (least squares, bytes per minute)
// over the second half, per worker. One run. A run whose job does not run through (a start stalled by other work on the
// machine, a recovery) is refused and tried again, three times at most; `refusals` lists them.
// Writes docs/benchmarks/memory.json.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { EventGenerator, operatorSpec, type GraphInput } from '@keyflow/core';
import { dropDatabase } from '@keyflow/db/testing';
import { redisKeys } from '@keyflow/runtime';
import { startStack, waitFor, waitForState, type Stack } from '../test/harness.ts';
import { benchDatabase, machine, stats, writeResult } from './setup.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const KEY_COUNTS = (process.env.BENCH_KEYS ?? '1000000,10000000').split(',').map(Number);
const EVENTS_PER_KEY = Number(process.env.BENCH_EVENTS_PER_KEY ?? 5);
const LEAK_MS = Number(process.env.BENCH_LEAK_MS ?? 600_000);
const LEAK_SAMPLE_MS = Number(process.env.BENCH_LEAK_SAMPLE_MS ?? 10_000);
const LEAK_KEYS = Number(process.env.BENCH_LEAK_KEYS ?? 100_000);
const LEAK_RATE = Number(process.env.BENCH_LEAK_RATE ?? 100_000);
const TARGET_BYTES_PER_KEY = 150;
const SEED = 11;
const P = 2;
const SINK = operatorSpec('blackhole') ? 'blackhole' : 'log';

/** Preloaded into each worker: on SIGUSR2, a full GC, then its memory on one line of stdout. */
const PROBE = `data:text/javascript,process.on('SIGUSR2',()=>{gc();process.stdout.write('KFMEM '+JSON.stringify(process.memoryUsage())+'\\n')})`;

/** process.memoryUsage() after a full GC: heapTotal − heapUsed is heap V8 keeps committed, external is outside its heap (buffers, WebAssembly). */
interface Memory {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

/** A worker's memory after a full GC, as it reports it. */
function probe(child: ChildProcess): Promise<Memory> {
  return new Promise((resolve, reject) => {
    let out = '';
    const done = (err?: Error, m?: Memory) => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      if (err) reject(err);
      else resolve(m!);
    };
    const onData = (b: Buffer) => {
      out += b.toString();
      const line = /KFMEM (\{.*\})\n/.exec(out);
      if (line) {
        const { rss, heapUsed, heapTotal, external } = JSON.parse(line[1]!) as Memory;
        done(undefined, { rss, heapUsed, heapTotal, external });
      }
    };
    const timer = setTimeout(() => done(new Error(`worker ${child.pid} did not report its memory`)), 60_000);
    child.stdout!.on('data', onData);
    child.kill('SIGUSR2');
  });
}

/** VmRSS of a process, bytes, without disturbing it. */
const vmRss = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const graph = (keys: number, total: number | undefined, rate: number): GraphInput => ({
  vertices: [
    { id: 'events', type: 'generator', parallelism: P, settings: { seed: SEED, rate, keys, skew: 'uniform', splits: 16, ...(total && { total }) } },
    ...(total ? [{ id: 'trickle', type: 'generator', parallelism: 1, settings: { seed: SEED, rate: 1, keys: 1, splits: 1 } }] : []),
    { id: 'count', type: 'count', parallelism: P },
    { id: 'sink', type: SINK, parallelism: P },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    ...(total ? [{ from: 'trickle', to: 'count', partitioning: 'hash' as const, key: 'user' }] : []),
    { from: 'count', to: 'sink', partitioning: 'forward' },
  ],
});

/** Distinct keys among the first `total` events of the generator. */
function distinctKeys(keys: number, total: number): number {
  const gen = new EventGenerator({ seed: SEED, keys, skew: 'uniform', zipfExponent: 1, splits: 16 });
  const seen = new Uint8Array(keys);
  let n = 0;
  for (let i = 0; i < total; i++) {
    const k = gen.keyIndexAt(i);
    if (!seen[k]) {
      seen[k] = 1;
      n++;
    }
  }
  return n;
}

/** The worker processes running subtasks of `vertexId` in the job. */
async function workersOf(stack: Stack, jobId: string, vertexId: string): Promise<ChildProcess[]> {
  const pool = await stack.client.listWorkers();
  const pids = pool.filter((w) => w.subtasks.some((s) => s.jobId === jobId && s.vertexId === vertexId)).map((w) => w.pid);
  return stack.workers.filter((w) => pids.includes(w.pid!));
}

async function deploy(stack: Stack, name: string, g: GraphInput, checkpointIntervalMs: number): Promise<string> {
  const pipeline = await stack.client.createPipeline({ name: `${name}-${stack.prefix}`, graph: g });
  const job = await stack.client.deployJob({ pipelineId: pipeline.id, checkpointIntervalMs });
  await waitForState(stack, job.id, 'RUNNING', 180_000).catch(async (err: Error) => {
    const [detail, pool, events] = await Promise.all([
      stack.client.getJob(job.id),
      stack.client.listWorkers(),
      stack.redis.xrange(redisKeys(stack.prefix).events, '-', '+'),
    ]);
    // What each subtask said of itself (running, failed, stopped…), as the control plane reads it.
    const said = events
      .map(([, fields]) => JSON.parse(fields[1]!) as { type: string; jobId: string; vertexId: string; index: number })
      .filter((e) => e.jobId === job.id && e.type !== 'metrics')
      .map((e) => `${e.vertexId}#${e.index} ${e.type}`);
    const where = {
      state: detail.state,
      attempt: detail.attempt,
      events: detail.events.slice(-5).map((e) => `${e.toState} ${e.reason ?? ''}`),
      workers: pool.map((w) => `${w.pid} ${w.subtasks.map((s) => `${s.vertexId}#${s.index}`).join(',')} ${w.heartbeatAgeMs} ms`),
      said,
    };
    throw new Error(`${err.message}; where it stands: ${JSON.stringify(where)}`);
  });
  return job.id;
}

/** The control plane's latest warnings and lifecycle lines, to say why a run was refused. */
const controlLog: string[] = [];
const stackOptions = (workers: number) => ({
  workers,
  slots: 1,
  workerNodeArgs: ['--expose-gc', '--import', PROBE],
  env: { LOG_LEVEL: 'info' },
  controlLog: (line: string) => {
    // Warnings, errors and the job's lifecycle; requests (info) are many.
    if (!/"level":[4-6]0|"component":"(lifecycle|recovery)"/.test(line)) return;
    controlLog.push(line);
    if (controlLog.length > 100) controlLog.shift();
  },
});

/** The workers' latest log lines, for the same. */
const workerLog: string[] = [];

/** Starts a stack for a run, its control plane's and workers' lines kept for `retried`. */
async function runStack(workers: number): Promise<Stack> {
  const stack = await startStack(stackOptions(workers));
  const keep = (pid: number, text: string) => {
    workerLog.push(`[${pid}] ${text}`);
    if (workerLog.length > 50) workerLog.shift();
  };
  for (const w of stack.workers) {
    w.stderr!.on('data', (b: Buffer) => keep(w.pid!, b.toString()));
    // Their warnings and errors (pino's levels 40–60); info lines are many.
    w.stdout!.on('data', (b: Buffer) => {
      for (const line of b.toString().split('\n')) if (/"level":[4-6]0/.test(line)) keep(w.pid!, `${line}\n`);
    });
  }
  return stack;
}

/** Runs refused and tried again, with why. */
const refusals: string[] = [];

/** `f`, tried again (up to three times in all) when the job did not run through: a machine shared with other work can stall a start. */
async function retried<T>(what: string, f: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    controlLog.length = 0;
    workerLog.length = 0;
    try {
      return await f();
    } catch (err) {
      if (attempt === 3) throw err;
      refusals.push(`${what}: ${(err as Error).message}`);
      console.log(
        `${what}: refused (${(err as Error).message}), again; the control plane said:\n${controlLog.join('')}\nthe workers:\n${workerLog.join('')}`,
      );
    }
  }
}

async function assertClean(stack: Stack, jobId: string): Promise<void> {
  const detail = await stack.client.getJob(jobId);
  if (detail.state !== 'RUNNING') throw new Error(`job is ${detail.state}: ${detail.failureReason}`);
  if (detail.attempt !== 1) throw new Error(`the job recovered during the run (attempt ${detail.attempt})`);
}

/** One run at `keys` keys: every count worker's memory idle and with the state, and bytes per key. */
async function stateRun(keys: number, distinct: number) {
  const total = keys * EVENTS_PER_KEY;
  // A worker per subtask: generators (with their N key strings) and counts never share a process.
  const stack = await runStack(P * 2 + 1);
  try {
    await sleep(2000);
    const idle = new Map<number, Memory>();
    for (const w of stack.workers) idle.set(w.pid!, await probe(w));
    const jobId = await deploy(stack, 'bench-memory', graph(keys, total, 0), 3_600_000);
    const t0 = performance.now();
    // Every event counted, and the count at rest (only the trickle's record a second comes in).
    let before = -1;
    await waitFor(
      async () => {
        const n = (await stack.client.getJob(jobId)).metrics?.vertices.count?.recordsIn ?? 0;
        const settled = n >= total && n - before < 10;
        before = n;
        return settled;
      },
      total / 20 + 300_000,
      `count to take in ${total} records`,
      2000,
    );
    const fillSec = (performance.now() - t0) / 1000;
    await assertClean(stack, jobId);
    const counters = await workersOf(stack, jobId, 'count');
    if (counters.length !== P) throw new Error(`count runs in ${counters.length} worker processes, not ${P}`);
    const workers: { pid: number; idle: Memory; after: Memory }[] = [];
    for (const w of counters) {
      const after = await probe(w);
      workers.push({ pid: w.pid!, idle: idle.get(w.pid!)!, after });
    }
    await stack.client.cancelJob(jobId);
    const grown = (f: (m: Memory) => number) => workers.reduce((s, w) => s + f(w.after) - f(w.idle), 0);
    return {
      keys,
      events: total,
      distinctKeys: distinct,
      fillSec: Number(fillSec.toFixed(1)),
      workers,
      rssGrowth: grown((m) => m.rss),
      heapGrowth: grown((m) => m.heapUsed),
      bytesPerKeyRss: Number((grown((m) => m.rss) / distinct).toFixed(1)),
      bytesPerKeyHeap: Number((grown((m) => m.heapUsed) / distinct).toFixed(1)),
    };
  } finally {
    await stack.close();
  }
}

/** Least-squares slope of y over x. */
function slope(points: [x: number, y: number][]): number {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const num = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const den = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

/** The steady job for LEAK_MS: each worker's RSS and heap sampled, and their slopes over the second half. */
async function leakRun() {
  const stack = await runStack(P * 2);
  try {
    const jobId = await deploy(stack, 'bench-memory-leak', graph(LEAK_KEYS, undefined, LEAK_RATE), 10_000);
    const roles = new Map<number, string>();
    for (const v of ['events', 'count']) for (const w of await workersOf(stack, jobId, v)) roles.set(w.pid!, v);
    const samples = new Map<number, { min: number; rss: number; heapUsed: number }[]>(stack.workers.map((w) => [w.pid!, []]));
    const t0 = performance.now();
    const a = (await stack.client.getJob(jobId)).metrics?.vertices.count?.recordsIn ?? 0;
    for (let next = 0; next <= LEAK_MS; next += LEAK_SAMPLE_MS) {
      await sleep(Math.max(0, t0 + next - performance.now()));
      const min = (performance.now() - t0) / 60_000;
      for (const w of stack.workers) {
        const rss = vmRss(w.pid!);
        const { heapUsed } = await probe(w);
        samples.get(w.pid!)!.push({ min: Number(min.toFixed(3)), rss, heapUsed });
      }
    }
    const b = (await stack.client.getJob(jobId)).metrics?.vertices.count?.recordsIn ?? 0;
    await assertClean(stack, jobId);
    await stack.client.cancelJob(jobId);
    const half = LEAK_MS / 60_000 / 2;
    return {
      keys: LEAK_KEYS,
      rate: LEAK_RATE,
      countedPerSec: Math.round(((b - a) * 1000) / (performance.now() - t0)),
      durationMs: LEAK_MS,
      sampleMs: LEAK_SAMPLE_MS,
      workers: [...samples].map(([pid, s]) => {
        const late = s.filter((x) => x.min >= half);
        return {
          pid,
          role: roles.get(pid) ?? 'idle',
          rssBytesPerMin: Math.round(slope(late.map((x) => [x.min, x.rss]))),
          heapBytesPerMin: Math.round(slope(late.map((x) => [x.min, x.heapUsed]))),
          samples: s,
        };
      }),
    };
  } finally {
    await stack.close();
  }
}

const dbUrl = await benchDatabase();
try {
  const distinct = new Map(KEY_COUNTS.map((k) => [k, distinctKeys(k, k * EVENTS_PER_KEY)]));
  const runs: { loadBefore: number; byKeys: Awaited<ReturnType<typeof stateRun>>[] }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const loadBefore = Number(loadavg()[0]!.toFixed(2));
    const byKeys = [];
    for (const keys of KEY_COUNTS) {
      const r = await retried(`run ${i + 1}, ${keys} keys`, () => stateRun(keys, distinct.get(keys)!));
      byKeys.push(r);
      console.log(
        `run ${i + 1}, ${keys.toLocaleString('en')} keys (${r.distinctKeys.toLocaleString('en')} distinct): ${r.bytesPerKeyRss} bytes/key RSS, ` +
          `${r.bytesPerKeyHeap} bytes/key heap (filled in ${r.fillSec} s)`,
      );
    }
    runs.push({ loadBefore, byKeys });
  }
  const perKeys = KEY_COUNTS.map((keys, k) => ({
    keys,
    distinctKeys: distinct.get(keys)!,
    bytesPerKeyRss: stats(
      runs.map((r) => r.byKeys[k]!.bytesPerKeyRss),
      1,
    ),
    bytesPerKeyHeap: stats(
      runs.map((r) => r.byKeys[k]!.bytesPerKeyHeap),
      1,
    ),
  }));
  // Between the smallest and the largest key count: the cost of one more key, without what every worker holds anyway.
  const [lo, hi] = [0, KEY_COUNTS.length - 1];
  const marginal =
    hi > lo
      ? {
          fromKeys: KEY_COUNTS[lo],
          toKeys: KEY_COUNTS[hi],
          bytesPerKeyRss: stats(
            runs.map((r) => (r.byKeys[hi]!.rssGrowth - r.byKeys[lo]!.rssGrowth) / (r.byKeys[hi]!.distinctKeys - r.byKeys[lo]!.distinctKeys)),
            1,
          ),
          bytesPerKeyHeap: stats(
            runs.map((r) => (r.byKeys[hi]!.heapGrowth - r.byKeys[lo]!.heapGrowth) / (r.byKeys[hi]!.distinctKeys - r.byKeys[lo]!.distinctKeys)),
            1,
          ),
        }
      : undefined;
  for (const p of perKeys)
    console.log(
      `${p.keys.toLocaleString('en')} keys, median (min–max) of ${RUNS}: ${p.bytesPerKeyRss.median} (${p.bytesPerKeyRss.min}–${p.bytesPerKeyRss.max}) bytes/key RSS, ` +
        `${p.bytesPerKeyHeap.median} (${p.bytesPerKeyHeap.min}–${p.bytesPerKeyHeap.max}) bytes/key heap (target ≤ ${TARGET_BYTES_PER_KEY})`,
    );
  if (marginal) console.log('marginal bytes per key:', marginal);

  const leak = LEAK_MS > 0 ? await retried('leak check', leakRun) : undefined;
  if (leak)
    for (const w of leak.workers)
      console.log(`leak check, ${w.role} worker ${w.pid}: ${w.rssBytesPerMin} bytes/min RSS, ${w.heapBytesPerMin} bytes/min heap`);

  const result = {
    ...machine(),
    parallelism: P,
    sink: SINK,
    eventsPerKey: EVENTS_PER_KEY,
    targetBytesPerKey: TARGET_BYTES_PER_KEY,
    runs,
    refusals,
    perKeys,
    marginal,
    leak: leak && {
      ...leak,
      countRssBytesPerMin: stats(leak.workers.filter((w) => w.role === 'count').map((w) => w.rssBytesPerMin)),
      countHeapBytesPerMin: stats(leak.workers.filter((w) => w.role === 'count').map((w) => w.heapBytesPerMin)),
    },
  };
  writeResult('memory.json', result);
} finally {
  await dropDatabase(dbUrl);
}
process.exit(0);
