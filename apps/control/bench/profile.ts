// Profiling aid (not a benchmark): the keyed count of `npm run bench` at p=2 for BENCH_MEASURE_MS with every worker
// under --cpu-prof, then a summary of where worker CPU time went (self time by function and by file). The .cpuprofile
// files stay in PROFILE_DIR (default .keyflow/profiles) for a flame graph (Chrome DevTools, speedscope). With
// PROFILE_QUERY, a Nexmark query of the builder's templates instead, run as `npm run bench:nexmark` runs it. The keyed
// count's keys and skew (PROFILE_KEYS, 50,000; PROFILE_SKEW, zipf) and the checkpoint interval (PROFILE_CHECKPOINT_MS,
// 10,000) can be set: `PROFILE_KEYS=1000000 PROFILE_SKEW=uniform PROFILE_CHECKPOINT_MS=2000` shows what checkpoints of
// a million keys cost, against the same run with PROFILE_CHECKPOINT_MS=600000.
//
//   npx tsx apps/control/bench/profile.ts
//   PROFILE_QUERY=q4 npx tsx apps/control/bench/profile.ts
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { nexmarkQuery, type GraphInput, type NexmarkQuery } from '@keyflow/core';
import { dropDatabase } from '@keyflow/db/testing';
import { startStack } from '../test/harness.ts';
import { benchDatabase, NEXMARK_SOURCE } from './setup.ts';

const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 20_000);
const DIR = resolve(process.env.PROFILE_DIR ?? '.keyflow/profiles', new Date().toISOString().replace(/[:.]/g, '-'));
const P = 2;
const QUERY = process.env.PROFILE_QUERY as NexmarkQuery | undefined;
const CHECKPOINT_MS = Number(process.env.PROFILE_CHECKPOINT_MS ?? 10_000);
const settings = {
  seed: 3,
  rate: 0,
  keys: Number(process.env.PROFILE_KEYS ?? 50_000),
  skew: (process.env.PROFILE_SKEW ?? 'zipf') as 'zipf' | 'uniform',
  splits: 16,
};

const KEYED_COUNT: GraphInput = {
  vertices: [
    { id: 'events', type: 'generator', parallelism: P, settings },
    { id: 'count', type: 'count', parallelism: P },
    { id: 'sink', type: 'postgres', parallelism: P, settings: { table: 'profile_counts', valueField: 'count' } },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'sink', partitioning: 'forward' },
  ],
};

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: Node[];
  samples: number[];
}

/** Self samples per function and per file of one profile, as shares of all its samples. */
function summarize(file: string): void {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const fn = new Map<string, number>();
  const url = new Map<string, number>();
  for (const id of prof.samples) {
    const f = byId.get(id)!.callFrame;
    const where = f.url.replace(/^.*\/(node_modules\/\.pnpm\/[^/]+\/node_modules\/|packages\/|apps\/)/, '') || '(native)';
    fn.set(
      `${f.functionName || '(anonymous)'} ${where}:${f.lineNumber + 1}`,
      (fn.get(`${f.functionName || '(anonymous)'} ${where}:${f.lineNumber + 1}`) ?? 0) + 1,
    );
    url.set(where, (url.get(where) ?? 0) + 1);
  }
  const total = prof.samples.length;
  const top = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`)
      .join('\n');
  console.log(`\n${file}: ${total} samples\nby function (self):\n${top(fn, 30)}\nby file (self):\n${top(url, 20)}`);
}

mkdirSync(DIR, { recursive: true });
const dbUrl = await benchDatabase();
try {
  const stack = await startStack({ workers: P, slots: 8, workerNodeArgs: ['--cpu-prof', `--cpu-prof-dir=${DIR}`] });
  try {
    const graph = QUERY ? nexmarkQuery(QUERY, { parallelism: P, sink: 'blackhole', source: NEXMARK_SOURCE }) : KEYED_COUNT;
    const pipeline = await stack.client.createPipeline({ name: `profile-${stack.prefix}`, graph });
    const job = await stack.client.deployJob({ pipelineId: pipeline.id, checkpointIntervalMs: CHECKPOINT_MS });
    await new Promise((r) => setTimeout(r, MEASURE_MS));
    const j = await stack.client.getJob(job.id);
    const counted = QUERY ? j.metrics?.vertices.events?.recordsIn : j.metrics?.vertices.count?.recordsIn;
    console.log(`${QUERY ? 'passed' : 'counted'} ${counted ?? 0} ${QUERY ? 'events' : 'records'} in ${MEASURE_MS} ms`);
    await stack.client.cancelJob(job.id);
  } finally {
    await stack.close();
  }
  await new Promise((r) => setTimeout(r, 1000));
  for (const f of readdirSync(DIR).filter((x) => x.endsWith('.cpuprofile'))) summarize(join(DIR, f));
} finally {
  await dropDatabase(dbUrl);
}
process.exit(0);
