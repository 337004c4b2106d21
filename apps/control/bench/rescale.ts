// Benchmark (not a test): live rescale against stop-with-savepoint and restart, on the same keyed count state,
// with 100,000 and 1,000,000 keys. Writes docs/benchmarks/rescale.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { GraphInput } from '@keyflow/core';
import { createMigratedDatabase, dropDatabase } from '@keyflow/db/testing';
import { startStack, waitFor, type Stack } from '../test/harness.ts';

const RATE = Number(process.env.BENCH_RATE ?? 200_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const graph = (keys: number, countParallelism: number): GraphInput => ({
  vertices: [
    { id: 'events', type: 'generator', parallelism: 1, settings: { seed: 9, rate: RATE, keys, skew: 'uniform', splits: 16 } },
    { id: 'count', type: 'count', parallelism: countParallelism },
    { id: 'sink', type: 'postgres', parallelism: countParallelism, settings: { table: `bench_rescale_${keys}`, valueField: 'count' } },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'sink', partitioning: 'forward' },
  ],
});

/** Samples the records the count operator took in, every 200 ms, per job. */
function sampler(stack: Stack) {
  const samples: { t: number; total: number }[] = [];
  let offset = 0;
  let jobId = '';
  let running = true;
  const loop = (async () => {
    while (running) {
      if (jobId) {
        const j = await stack.client.getJob(jobId).catch(() => undefined);
        const total = j?.metrics?.vertices.count?.recordsIn;
        if (total !== undefined) samples.push({ t: performance.now(), total: offset + total });
      }
      await sleep(200);
    }
  })();
  return {
    follow(id: string) {
      // A restarted job counts from zero: carry the old total over so the series stays monotonic.
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

/**
 * From the samples: how long after `from` the records/s over a second got back to 90 % of `before`, counting only
 * seconds that end once the job runs again (`runningAt`), and the deepest dip after `from` on the way there.
 */
async function recovery(s: ReturnType<typeof sampler>, from: number, runningAt: number, before: number) {
  const deadline = performance.now() + 120_000;
  for (;;) {
    let lowest = before;
    for (const x of s.samples) {
      if (x.t < from + 1000) continue;
      const rate = s.rateAt(x.t);
      lowest = Math.min(lowest, Math.max(0, rate));
      if (x.t >= runningAt && rate >= 0.9 * before) return { toRateMs: Math.round(x.t - from), dip: Number((1 - lowest / before).toFixed(3)) };
    }
    if (performance.now() > deadline) throw new Error('throughput did not come back within 120 s');
    await sleep(200);
  }
}

async function runSize(keys: number) {
  const stack = await startStack({ workers: 2, slots: 4 });
  const s = sampler(stack);
  try {
    const pipeline = await stack.client.createPipeline({ name: `bench-rescale-${keys}-${stack.prefix}`, graph: graph(keys, 1) });
    const job = await stack.client.deployJob({ pipelineId: pipeline.id, checkpointIntervalMs: 60_000 });
    s.follow(job.id);
    await waitFor(async () => (await stack.client.getJob(job.id)).state === 'RUNNING', 60_000, 'the job to run');
    // Fill the state: with uniform keys, 3.5 × keys events touch about 97 % of them.
    await sleep(Math.max(8000, ((3.5 * keys) / RATE) * 1000));
    // Over 5 s: a one-second rate can catch a burst of a generator catching up.
    const before = s.rateAt(performance.now(), 5000);

    // Live: count 1 → 2 while the job runs.
    const t0 = performance.now();
    const { scalingEvents } = await stack.client.rescaleJob(job.id, { parallelism: { count: 2 } });
    const event = await waitFor(
      async () => {
        const e = (await stack.client.listScalingEvents(job.id)).find((x) => x.id === scalingEvents[0]!.id)!;
        if (e.status === 'FAILED' || e.status === 'ROLLED_BACK') throw new Error(`rescale ${e.status}: ${e.reason}`);
        return e.status === 'COMPLETED' && e;
      },
      120_000,
      'the live rescale',
    );
    // The event's times are wall-clock; the samples' are performance.now().
    const liveRunning = performance.now() - (Date.now() - new Date(event.restoredAt!).getTime());
    const live = await recovery(s, t0, liveRunning, before);
    const checkpoint = (await stack.client.listCheckpoints(job.id)).find((c) => c.id === event.checkpointId)!;
    const stateBytes = checkpoint.acks.filter((a) => a.vertexId === 'count').reduce((n, a) => n + a.bytes, 0);
    const liveResult = {
      pauseMs: event.pauseMs!,
      requestToRunningMs: new Date(event.runningAt!).getTime() - new Date(event.requestedAt).getTime(),
      ...live,
      keyGroupsMoved: event.keyGroupsMoved,
      bytesMoved: event.bytesMoved,
    };
    await sleep(6000);
    const before2 = s.rateAt(performance.now(), 5000);

    // Stop with a savepoint and deploy again from it at the new parallelism (2 → 1), the way Flink rescales.
    await stack.client.createVersion(pipeline.id, graph(keys, 1));
    const t1 = performance.now();
    await stack.client.stopJob(job.id);
    await waitFor(async () => (await stack.client.getJob(job.id)).state === 'STOPPED', 120_000, 'the job to stop');
    const savepoint = (await stack.client.listCheckpoints(job.id)).find((c) => c.kind === 'SAVEPOINT' && c.status === 'COMPLETED')!;
    const restarted = await stack.client.deployJob({ pipelineId: pipeline.id, restoreFromCheckpointId: savepoint.id, checkpointIntervalMs: 60_000 });
    s.follow(restarted.id);
    await waitFor(async () => (await stack.client.getJob(restarted.id)).state === 'RUNNING', 120_000, 'the restarted job to run');
    const runningMs = Math.round(performance.now() - t1);
    // The job does nothing from the stop request until its subtasks run again: that is its pause.
    const restart = await recovery(s, t1, t1 + runningMs, before2);
    await stack.client.cancelJob(restarted.id);
    return {
      keys,
      stateBytes,
      rateBefore: Math.round(before),
      live: liveResult,
      stopAndRestart: { pauseMs: runningMs, requestToRunningMs: runningMs, ...restart },
      pauseRatio: Number((runningMs / Math.max(1, liveResult.pauseMs)).toFixed(1)),
    };
  } finally {
    await s.stop();
    await stack.close();
  }
}

const serverUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const dbUrl = await createMigratedDatabase(serverUrl, `keyflow_bench_${Date.now().toString(36)}`);
process.env.DATABASE_URL = dbUrl;
process.env.KEYFLOW_PREFIX ??= 'kfbench';
try {
  const sizes = (process.env.BENCH_KEYS ?? '100000,1000000').split(',').map(Number);
  const results = [];
  for (const keys of sizes) {
    const r = await runSize(keys);
    results.push(r);
    console.log(
      `${keys.toLocaleString('en')} keys (${(r.stateBytes / 1e6).toFixed(1)} MB of count state), ${r.rateBefore.toLocaleString('en')} records/s before:\n` +
        `  live rescale 1→2:        pause ${r.live.pauseMs} ms, request→running ${r.live.requestToRunningMs} ms, back to rate after ${r.live.toRateMs} ms, dip ${(r.live.dip * 100).toFixed(0)} %\n` +
        `  stop + restart 2→1:      pause ${r.stopAndRestart.pauseMs} ms, back to rate after ${r.stopAndRestart.toRateMs} ms, dip ${(r.stopAndRestart.dip * 100).toFixed(0)} %\n` +
        `  stop-and-restart pause / live pause: ${r.pauseRatio}×`,
    );
  }
  const out = fileURLToPath(new URL('../../../docs/benchmarks/', import.meta.url));
  mkdirSync(out, { recursive: true });
  writeFileSync(
    `${out}rescale.json`,
    `${JSON.stringify({ date: new Date().toISOString(), cores: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', rate: RATE, results }, null, 2)}\n`,
  );
  console.log('wrote docs/benchmarks/rescale.json');
} finally {
  await dropDatabase(dbUrl);
}
process.exit(0);
