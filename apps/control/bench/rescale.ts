// Benchmark (not a test): live rescale against stop-with-savepoint-and-restart, on the same keyed count state, in
// both directions each way (1→2 and 2→1), measured from the same server-side events, with the default
// exactly-once sink. Median of BENCH_RUNS (3) fresh runs per state size, with min and max.
// Writes docs/benchmarks/rescale.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { JobDetail } from '@keyflow/api';
import type { GraphInput } from '@keyflow/core';
import { dropDatabase } from '@keyflow/db/testing';
import { startStack, waitFor, waitForState, type Stack } from '../test/harness.ts';
import { benchDatabase, stats } from './setup.ts';

const RATE = Number(process.env.BENCH_RATE ?? 200_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const graph = (keys: number): GraphInput => ({
  vertices: [
    { id: 'events', type: 'generator', parallelism: 1, settings: { seed: 9, rate: RATE, keys, skew: 'uniform', splits: 16 } },
    { id: 'count', type: 'count', parallelism: 1 },
    // The default delivery: exactly-once.
    { id: 'sink', type: 'postgres', parallelism: 1, settings: { table: `bench_rescale_${keys}`, valueField: 'count' } },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'sink', partitioning: 'forward' },
  ],
});

/** One rescale as measured: every time is wall-clock ms from server-side events. */
interface Measured {
  /** The moved key groups' unavailability: the first count subtask's barrier alignment → the last one runs with its state. */
  pauseMs: number;
  /**
   * The request as the control plane recorded it → the operator runs at the new parallelism with all its state
   * (live: the last new owner loaded what it gains; restart: the new job is RUNNING, every subtask restored).
   */
  requestToRunningMs: number;
  /** Live only: the request → the rescale checkpoint completed (the new parallelism is what a failure restores). */
  requestToCompletedMs?: number;
  /** The request → count's records/s over a second is back to ≥ 90 % of the rate before. */
  toRateMs: number;
  /** The deepest fall of count's records/s over a second, between the request and back to rate, as a share of the rate before. */
  dip: number;
}

/** Samples count's records in (the control plane's running total) every 100 ms, carried over from job to job. */
function sampler(stack: Stack) {
  const samples: { t: number; total: number }[] = [];
  let offset = 0;
  let jobId = '';
  let running = true;
  const loop = (async () => {
    while (running) {
      if (jobId) {
        const id = jobId;
        const j = await stack.client.getJob(id).catch(() => undefined);
        const total = j?.metrics?.vertices.count?.recordsIn;
        if (total !== undefined && id === jobId) samples.push({ t: Date.now(), total: offset + total });
      }
      await sleep(100);
    }
  })();
  return {
    /** Follows another job: a new job counts from zero, so the old total is carried over. */
    follow(id: string) {
      offset = samples.at(-1)?.total ?? 0;
      jobId = id;
    },
    /** Records per second over the `windowMs` ending at t. */
    rateAt(t: number, windowMs = 1000) {
      const end = samples.filter((s) => s.t <= t).at(-1);
      const start = samples.filter((s) => s.t <= t - windowMs).at(-1);
      return end && start && end.t > start.t ? ((end.total - start.total) * 1000) / (end.t - start.t) : 0;
    },
    samples,
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** After `from` (the request): when the rate over a second, ending once the job runs again, is back to 90 %, and the deepest dip. */
async function backToRate(s: ReturnType<typeof sampler>, from: number, runningAt: number, before: number) {
  const deadline = Date.now() + 120_000;
  for (;;) {
    let lowest = before;
    for (const x of s.samples) {
      if (x.t < from + 1000) continue;
      const rate = s.rateAt(x.t);
      lowest = Math.min(lowest, Math.max(0, rate));
      if (x.t >= runningAt && rate >= 0.9 * before) return { toRateMs: x.t - from, dip: Number((1 - lowest / before).toFixed(3)) };
    }
    if (Date.now() > deadline) throw new Error('throughput did not come back within 120 s');
    await sleep(200);
  }
}

const at = (iso: string | null | undefined) => (iso ? Date.parse(iso) : NaN);

/** A rescale must not be a recovery in disguise: the job stayed on its attempt. */
function assertNoRecovery(j: JobDetail, since: number) {
  const recovering = j.events.filter((e) => e.toState === 'RECOVERING' && at(e.at) >= since);
  if (recovering.length || j.attempt !== 1)
    throw new Error(`the job recovered during the measurement: ${recovering[0]?.reason ?? `attempt ${j.attempt}`}`);
}

/** Live: PATCH the parallelism and follow the scaling event. */
async function live(stack: Stack, s: ReturnType<typeof sampler>, jobId: string, to: number): Promise<Measured> {
  const before = s.rateAt(Date.now(), 5000);
  const sent = Date.now();
  const { scalingEvents } = await stack.client.rescaleJob(jobId, { parallelism: { count: to } });
  const event = await waitFor(
    async () => {
      const e = (await stack.client.listScalingEvents(jobId)).find((x) => x.id === scalingEvents[0]!.id)!;
      if (!['QUEUED', 'WAITING_FOR_SLOTS', 'ALIGNING', 'COMPLETED'].includes(e.status)) throw new Error(`rescale ${e.status}: ${e.reason}`);
      return e.status === 'COMPLETED' && e;
    },
    120_000,
    'the live rescale',
  );
  const requested = at(event.requestedAt);
  const runningAt = at(event.restoredAt);
  const rate = await backToRate(s, requested, runningAt, before);
  assertNoRecovery(await stack.client.getJob(jobId), sent);
  return { pauseMs: event.pauseMs!, requestToRunningMs: runningAt - requested, requestToCompletedMs: at(event.runningAt) - requested, ...rate };
}

/** Stop with a savepoint and deploy again from it at the new parallelism, the way Flink rescales. */
async function restart(
  stack: Stack,
  s: ReturnType<typeof sampler>,
  pipelineId: string,
  jobId: string,
  to: number,
): Promise<{ m: Measured; jobId: string }> {
  const before = s.rateAt(Date.now(), 5000);
  await stack.client.stopJob(jobId);
  const stopped = await waitFor(
    async () => {
      const j = await stack.client.getJob(jobId);
      if (j.state === 'RUNNING' || j.state === 'FAILED') throw new Error(`the stop did not take: ${j.state}`);
      return j.state === 'STOPPED' && j;
    },
    120_000,
    'the job to stop',
    20,
  );
  const requested = at(stopped.events.find((e) => e.toState === 'STOPPING')!.at);
  const savepoint = (await stack.client.listCheckpoints(jobId)).find((c) => c.kind === 'SAVEPOINT' && c.status === 'COMPLETED')!;
  const aligned = Math.min(...savepoint.acks.filter((a) => a.vertexId === 'count').map((a) => at(a.ackedAt) - a.asyncMs - a.syncMs));
  const next = await stack.client.deployJob({ pipelineId, restoreFromCheckpointId: savepoint.id, parallelism: { count: to, sink: to } });
  s.follow(next.id);
  const running = await waitFor(
    async () => {
      const j = await stack.client.getJob(next.id);
      return j.state === 'RUNNING' && j;
    },
    120_000,
    'the restarted job to run',
    20,
  );
  const runningAt = at(running.events.find((e) => e.toState === 'RUNNING')!.at);
  const rate = await backToRate(s, requested, runningAt, before);
  assertNoRecovery(await stack.client.getJob(next.id), requested);
  return { m: { pauseMs: runningAt - aligned, requestToRunningMs: runningAt - requested, ...rate }, jobId: next.id };
}

type Scenario = 'live 1→2' | 'live 2→1' | 'restart 1→2' | 'restart 2→1';

/** One fresh run: fill count's state at p=1, then live 1→2, live 2→1, restart 1→2, restart 2→1, each settled first. */
async function runOnce(keys: number): Promise<{ stateBytes: number; rateBefore: number; results: Record<Scenario, Measured> }> {
  const stack = await startStack({ workers: 2, slots: 4 });
  const s = sampler(stack);
  try {
    const pipeline = await stack.client.createPipeline({ name: `bench-rescale-${keys}-${stack.prefix}`, graph: graph(keys) });
    // The defaults a user gets: checkpoints every 10 s, the exactly-once sink.
    let jobId = (await stack.client.deployJob({ pipelineId: pipeline.id })).id;
    s.follow(jobId);
    await waitForState(stack, jobId, 'RUNNING', 60_000);
    // Fill the state: with uniform keys, 3.5 × keys events touch about 97 % of them.
    await sleep(Math.max(8000, ((3.5 * keys) / RATE) * 1000));
    const rateBefore = s.rateAt(Date.now(), 5000);
    const settle = () => sleep(6000);
    const results = {} as Record<Scenario, Measured>;
    results['live 1→2'] = await live(stack, s, jobId, 2);
    await settle();
    results['live 2→1'] = await live(stack, s, jobId, 1);
    const rescale = (await stack.client.listCheckpoints(jobId)).find((c) => c.kind === 'RESCALE' && c.status === 'COMPLETED')!;
    const stateBytes = rescale.acks.filter((a) => a.vertexId === 'count').reduce((n, a) => n + a.bytes, 0);
    await settle();
    let r = await restart(stack, s, pipeline.id, jobId, 2);
    results['restart 1→2'] = r.m;
    jobId = r.jobId;
    await settle();
    r = await restart(stack, s, pipeline.id, jobId, 1);
    results['restart 2→1'] = r.m;
    await stack.client.cancelJob(r.jobId);
    return { stateBytes, rateBefore: Math.round(rateBefore), results };
  } finally {
    await s.stop();
    await stack.close();
  }
}

/** Per measure of one scenario over the runs: median, min and max. */
type Summary = Record<Exclude<keyof Measured, 'requestToCompletedMs'>, Stats> & { requestToCompletedMs?: Stats };
type Stats = ReturnType<typeof stats>;

const dbUrl = await benchDatabase();
try {
  const sizes = (process.env.BENCH_KEYS ?? '100000,1000000').split(',').map(Number);
  const out = [];
  for (const keys of sizes) {
    const runs: ({ loadBefore: number } & Awaited<ReturnType<typeof runOnce>>)[] = [];
    for (let i = 0; i < RUNS; i++) {
      const load = loadavg()[0]!;
      const run = await runOnce(keys);
      runs.push({ loadBefore: Number(load.toFixed(2)), ...run });
      console.log(`${keys.toLocaleString('en')} keys, run ${i + 1}: ${JSON.stringify(run.results)}`);
    }
    const scenarios = Object.keys(runs[0]!.results) as Scenario[];
    const summary = Object.fromEntries(
      scenarios.map((sc) => [
        sc,
        Object.fromEntries(
          (['pauseMs', 'requestToRunningMs', 'requestToCompletedMs', 'toRateMs', 'dip'] as const)
            .filter((k) => runs[0]!.results[sc][k] !== undefined)
            .map((k) => [k, stats(runs.map((r) => r.results[sc][k]!))]),
        ),
      ]),
    ) as Record<Scenario, Summary>;
    const ratio = (dir: '1→2' | '2→1') =>
      Number((summary[`restart ${dir}`].pauseMs.median / Math.max(1, summary[`live ${dir}`].pauseMs.median)).toFixed(1));
    const result = {
      keys,
      stateBytes: stats(runs.map((r) => r.stateBytes)).median,
      pauseRatio: { '1→2': ratio('1→2'), '2→1': ratio('2→1') },
      summary,
      runs,
    };
    out.push(result);
    console.log(`${keys.toLocaleString('en')} keys (${(result.stateBytes / 1e6).toFixed(1)} MB of count state), median (min–max) of ${RUNS}:`);
    for (const sc of scenarios) {
      const m = summary[sc];
      const f = (x: ReturnType<typeof stats>, unit = ' ms') => `${x.median}${unit} (${x.min}–${x.max})`;
      const completed = m.requestToCompletedMs ? `, request→checkpoint completed ${f(m.requestToCompletedMs)}` : '';
      console.log(
        `  ${sc.padEnd(12)} pause ${f(m.pauseMs)}, request→running ${f(m.requestToRunningMs)}${completed}, back to rate ${f(m.toRateMs)}, dip ${f(m.dip, '')}`,
      );
    }
    console.log(`  restart pause / live pause: 1→2 ${result.pauseRatio['1→2']}×, 2→1 ${result.pauseRatio['2→1']}×`);
  }
  const dir = fileURLToPath(new URL('../../../docs/benchmarks/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    `${dir}rescale.json`,
    `${JSON.stringify({ date: new Date().toISOString(), cores: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', rate: RATE, runs: RUNS, results: out }, null, 2)}\n`,
  );
  console.log('wrote docs/benchmarks/rescale.json');
} finally {
  await dropDatabase(dbUrl);
}
process.exit(0);
