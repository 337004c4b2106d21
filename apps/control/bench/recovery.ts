// Benchmark (not a test): recovery of a keyed count with 1,000,000 keys of state after a worker process is
// killed (SIGKILL). Writes docs/benchmarks/recovery.json and the "Recovery" section of docs/benchmarks.md.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { GraphInput } from '@keyflow/core';
import { dropDatabase } from '@keyflow/db/testing';
import { redisKeys, TASK_QUEUE } from '@keyflow/runtime';
import { Queue } from 'bullmq';
import { controlEnv } from '../src/env.ts';
import { taskId } from '../src/cluster/scheduler.ts';
import { startStack, waitFor, waitForState, type Stack } from '../test/harness.ts';
import { benchDatabase } from './setup.ts';

const KEYS = Number(process.env.BENCH_KEYS ?? 1_000_000);
// Above what 2 cores can do: the rate before is the pipeline's capacity with this much state.
const RATE = Number(process.env.BENCH_RATE ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
// With uniform keys, 5 × keys events touch 1 − e⁻⁵ ≈ 99.3 % of them.
const FILL_EVENTS = 5 * KEYS;
const CHECKPOINT_INTERVAL_MS = 10_000;
const BEFORE_MS = 5000;
const POLL_MS = 250;
const BACK_TO_RATE = 0.9;
// How long the rate may take to come back before the run records that it did not, and when after the job runs
// again the rate after is averaged (the placement of the new attempt's subtasks can change the pipeline's capacity).
const BACK_TIMEOUT_MS = 60_000;
const AFTER_WINDOW_MS = [5000, 10_000] as const;
const WORKERS = Number(process.env.BENCH_WORKERS ?? 3);
const SLOTS = Number(process.env.BENCH_SLOTS ?? 2);
const SINK = 'log';
// BullMQ's stall detection (a lock expiring) must not be what finds the dead worker: the heartbeats must.
const STACK_ENV = { WORKER_LOCK_MS: '30000' };
const TARGETS = { detectedMs: 3000, runningMs: 5000 };
// Left at the control plane's default unless the environment sets it: the figure to report is the default's.
const HEARTBEAT_TIMEOUT_MS = controlEnv.shape.HEARTBEAT_TIMEOUT_MS.parse(process.env.HEARTBEAT_TIMEOUT_MS);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : Math.round((s[m - 1]! + s[m]!) / 2);
};
const ms = (n: number) => `${Math.round(n).toLocaleString('en')} ms`;
const backMs = (n: number | null) => (n === null ? `not within ${BACK_TIMEOUT_MS / 1000} s` : ms(n));
/** Which subtasks each worker process ran, e.g. `events#0 / count#0+count#1 (killed)`. */
const placement = (p: Record<string, string[]>, killedWorker?: string) =>
  Object.entries(p)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([w, subtasks]) => `${[...subtasks].sort().join('+')}${w === killedWorker ? ' (killed)' : ''}`)
    .join(' / ');

/** What placement weighed the new attempt's subtasks by, cores each. */
const placedBy = (c: Record<string, number>) =>
  Object.entries(c)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(', ') || 'count (no costs)';

const graph = (run: number): GraphInput => ({
  vertices: [
    { id: 'events', type: 'generator', parallelism: 1, settings: { seed: 11 + run, rate: RATE, keys: KEYS, skew: 'uniform', splits: 16 } },
    { id: 'count', type: 'count', parallelism: 2 },
    { id: 'sink', type: SINK, parallelism: 2, settings: { sampleSize: 100 } },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'sink', partitioning: 'forward' },
  ],
});

/** The count operator's records/s as the control plane reports it (the latest 500 ms window of each subtask, summed). */
async function countRate(stack: Stack, jobId: string) {
  const j = await stack.client.getJob(jobId);
  return {
    at: Date.now(),
    state: j.state,
    attempt: j.attempt,
    rate: j.metrics?.vertices.count?.recordsInPerSec ?? 0,
    recordsIn: j.metrics?.vertices.count?.recordsIn ?? 0,
  };
}

/**
 * Per subtask of the new attempt: when its task job was put on the queue (after the backoff), when a worker picked
 * it up, and when it reported running (the stream id of its `running` event is the time it was sent).
 */
async function subtaskTimes(stack: Stack, jobId: string, attempt: number, since: number) {
  const keys = redisKeys(stack.prefix);
  const queue = new Queue(TASK_QUEUE, { connection: stack.redis.duplicate(), prefix: keys.bullPrefix });
  try {
    const running = new Map<string, { at: number; workerId: string; restoreMs: number }>();
    for (const [id, fields] of await stack.redis.xrange(keys.events, String(since), '+')) {
      const e = JSON.parse(fields[1] ?? '{}') as {
        type?: string;
        jobId?: string;
        attempt?: number;
        vertexId?: string;
        index?: number;
        workerId?: string;
        restoreMs?: number;
      };
      if (e.type === 'running' && e.jobId === jobId && e.attempt === attempt)
        running.set(`${e.vertexId}#${e.index}`, { at: Number(id.split('-')[0]), workerId: e.workerId ?? '?', restoreMs: e.restoreMs ?? 0 });
    }
    const subtasks = [
      ['events', 0],
      ['count', 0],
      ['count', 1],
    ] as const;
    return Promise.all(
      subtasks.map(async ([chain, index]) => {
        const task = await queue.getJob(taskId(jobId, attempt, chain, index));
        const r = running.get(`${chain}#${index}`);
        return {
          subtask: `${chain}#${index}`,
          worker: r?.workerId ?? null,
          enqueuedAt: task?.timestamp,
          pickedAt: task?.processedOn,
          runningAt: r?.at,
          restoreMs: r?.restoreMs ?? null,
        };
      }),
    );
  } finally {
    await queue.close();
  }
}

async function runOnce(run: number) {
  const load = loadavg()[0]!;
  const stack = await startStack({ workers: WORKERS, slots: SLOTS, env: STACK_ENV });
  try {
    const pipeline = await stack.client.createPipeline({ name: `bench-recovery-${run}-${stack.prefix}`, graph: graph(run) });
    const job = await stack.client.deployJob({ pipelineId: pipeline.id, checkpointIntervalMs: CHECKPOINT_INTERVAL_MS });
    await waitForState(stack, job.id, 'RUNNING', 60_000);

    // Fill the state, then wait for a checkpoint taken after that: the one the recovery restores holds it all.
    // A recovery on the way (a busy machine can delay heartbeats) rewinds the state: the fill counts again from it.
    let base = { attempt: 1, recordsIn: 0 };
    const filled = await waitFor(
      async () => {
        const s = await countRate(stack, job.id);
        if (s.state === 'FAILED' || s.state === 'CANCELED') throw new Error(`job ${s.state} while filling the state`);
        if (s.state !== 'RUNNING') return false;
        if (s.attempt !== base.attempt) base = { attempt: s.attempt, recordsIn: s.recordsIn };
        return s.recordsIn - base.recordsIn >= FILL_EVENTS && s;
      },
      600_000,
      `${FILL_EVENTS.toLocaleString('en')} events into count`,
    );
    await waitFor(
      async () =>
        (await stack.client.listCheckpoints(job.id)).find((c) => c.status === 'COMPLETED' && new Date(c.triggeredAt).getTime() >= filled.at),
      120_000,
      'a checkpoint after the fill',
    );

    // The rate before, averaged over a few seconds: one 500 ms window can catch a burst or a pause.
    const before: number[] = [];
    for (const end = Date.now() + BEFORE_MS; Date.now() < end; await sleep(POLL_MS)) before.push((await countRate(stack, job.id)).rate);
    const rateBefore = before.reduce((a, b) => a + b, 0) / before.length;

    // Kill a worker process that runs a count subtask; one without the generator if there is one.
    const oldAttempt = (await stack.client.getJob(job.id)).attempt;
    const earlier = (await stack.client.listRecoveries(job.id)).map((r) => `attempt ${r.attempt}: ${r.cause}`);
    if (earlier.length) console.warn(`run ${run}: the job recovered before the kill: ${earlier.join('; ')}`);
    const placed = (await stack.client.listWorkers()).map((w) => ({
      w,
      subtasks: w.subtasks.filter((s) => s.jobId === job.id && s.attempt === oldAttempt),
    }));
    // The checkpoint the recovery will restore completed before the kill; retention may drop it by the end of the run.
    const checkpoints = await stack.client.listCheckpoints(job.id);
    const mine = placed
      .filter((x) => x.subtasks.some((s) => s.vertexId === 'count'))
      .sort((a, b) => Number(a.subtasks.some((s) => s.vertexId === 'events')) - Number(b.subtasks.some((s) => s.vertexId === 'events')));
    const target = mine[0];
    const child = target && stack.workers.find((c) => c.pid === target.w.pid);
    if (!target || !child) throw new Error('no worker process runs a count subtask');
    const killed = target.subtasks.map((s) => `${s.vertexId}#${s.index}`);
    const placementBefore = Object.fromEntries(
      placed.filter((x) => x.subtasks.length).map((x) => [x.w.id, x.subtasks.map((s) => `${s.vertexId}#${s.index}`).sort()]),
    );
    const t0 = Date.now();
    child.kill('SIGKILL');

    // Poll until the new attempt runs and count's rate is back to 90 % of the rate before, and for the rate after.
    const samples: Awaited<ReturnType<typeof countRate>>[] = [];
    let runningSeen: number | undefined;
    let back: (typeof samples)[number] | undefined;
    for (;;) {
      const next = Date.now() + POLL_MS;
      const s = await countRate(stack, job.id);
      samples.push(s);
      if (s.state === 'FAILED') throw new Error('the job failed instead of recovering');
      const recovered = s.state === 'RUNNING' && s.attempt > oldAttempt;
      if (recovered) runningSeen ??= s.at;
      if (recovered && !back && s.rate >= BACK_TO_RATE * rateBefore) back = s;
      if (runningSeen === undefined && s.at - t0 > BACK_TIMEOUT_MS) throw new Error(`the job did not run again within ${BACK_TIMEOUT_MS} ms`);
      if (runningSeen !== undefined && s.at - runningSeen >= AFTER_WINDOW_MS[1] && (back || s.at - t0 >= BACK_TIMEOUT_MS)) break;
      await sleep(next - Date.now());
    }
    const after = samples.filter((s) => s.at - runningSeen! >= AFTER_WINDOW_MS[0] && s.at - runningSeen! <= AFTER_WINDOW_MS[1]).map((s) => s.rate);
    const rateAfter = after.reduce((a, b) => a + b, 0) / Math.max(1, after.length);

    const recovery = (await stack.client.listRecoveries(job.id)).find((r) => r.attempt === oldAttempt + 1);
    if (!recovery?.runningAt) throw new Error(`no completed recovery of attempt ${oldAttempt + 1}: ${JSON.stringify(recovery)}`);
    const events = (await stack.client.getJob(job.id)).events;
    const recoveringEvent = events.find((e) => e.toState === 'RECOVERING' && e.attempt === recovery.attempt);
    const runningEvent = events.find((e) => e.toState === 'RUNNING' && e.attempt === recovery.attempt);
    const checkpoint = checkpoints.find((c) => c.id === recovery.checkpointId);
    const subtasks = await subtaskTimes(stack, job.id, recovery.attempt, t0);
    const since = (iso: string | null | undefined) => (iso ? new Date(iso).getTime() - t0 : null);
    const sinceMs = (at: number | undefined) => (at !== undefined ? at - t0 : null);
    const latest = (at: (number | undefined)[]) => (at.every((t) => t !== undefined) ? Math.max(...(at as number[])) : undefined);
    const lowest = Math.min(...samples.filter((s) => s.at <= (back?.at ?? Infinity)).map((s) => s.rate));
    const placementAfter: Record<string, string[]> = {};
    for (const x of subtasks) (placementAfter[x.worker ?? '?'] ??= []).push(x.subtask);
    // What placement weighed each new subtask by (cores): its operator's CPU before the kill, shared among its subtasks.
    const costs = Object.fromEntries(
      (await stack.client.listWorkers())
        .flatMap((w) => w.subtasks)
        .filter((s) => s.jobId === job.id && s.attempt === recovery.attempt && s.cost !== undefined)
        .map((s) => [`${s.vertexId}#${s.index}`, s.cost!]),
    );
    await stack.client.cancelJob(job.id);
    return {
      run,
      loadAverage1m: Number(load.toFixed(2)),
      recoveriesBeforeKill: earlier,
      killedAt: new Date(t0).toISOString(),
      killed,
      killedWorker: target.w.id,
      placementBefore,
      placementAfter,
      costs,
      rateBefore: Math.round(rateBefore),
      keysSeenEstimate: Math.round(KEYS * (1 - Math.exp(-(filled.recordsIn - base.recordsIn) / KEYS))),
      checkpoint: {
        id: recovery.checkpointId,
        number: recovery.checkpointNumber,
        bytes: checkpoint?.bytes ?? null,
        countBytes: checkpoint ? checkpoint.acks.filter((a) => a.vertexId === 'count').reduce((n, a) => n + a.bytes, 0) : null,
      },
      detectedMs: new Date(recovery.detectedAt).getTime() - t0,
      runningMs: new Date(recovery.runningAt).getTime() - t0,
      /** Null: count's rate did not reach 90 % of the rate before within BACK_TIMEOUT_MS of the kill. */
      backToRateMs: back ? back.at - t0 : null,
      rateBack: back ? Math.round(back.rate) : null,
      rateAfter: Math.round(rateAfter),
      lowestRate: Math.round(Math.max(0, lowest)),
      // Where the time went, each from T0 (the kill).
      timeline: {
        lastHeartbeatMs: since(recovery.failedAt),
        detectedMs: since(recovery.detectedAt),
        recoveringEventMs: since(recoveringEvent?.at),
        enqueuedMs: sinceMs(latest(subtasks.map((x) => x.enqueuedAt))),
        lastPickedMs: sinceMs(latest(subtasks.map((x) => x.pickedAt))),
        lastSubtaskRunningMs: sinceMs(latest(subtasks.map((x) => x.runningAt))),
        runningEventMs: since(runningEvent?.at),
        runningMs: since(recovery.runningAt),
      },
      subtasks: subtasks.map((x) => ({
        subtask: x.subtask,
        worker: x.worker,
        pickedMs: sinceMs(x.pickedAt),
        runningMs: sinceMs(x.runningAt),
        restoreMs: x.restoreMs,
      })),
      detectionMs: recovery.detectionMs,
      recoveryMs: recovery.recoveryMs,
      restoreMs: recovery.restoreMs,
      keyGroupsRestored: recovery.keyGroupsRestored,
      bytesRestored: recovery.bytesRestored,
      cause: recovery.cause,
    };
  } finally {
    await stack.close();
  }
}

type Run = Awaited<ReturnType<typeof runOnce>>;
interface Median {
  rateBefore: number;
  detectedMs: number;
  runningMs: number;
  /** Null when the rate came back within BACK_TIMEOUT_MS in fewer than half the runs. */
  backToRateMs: number | null;
  rateAfter: number;
  restoreMs: number;
}

/** Reflows a paragraph to the page's line width. */
function wrap(text: string, width = 100): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line].join('\n');
}

/** The "Recovery" section of docs/benchmarks.md, from this run's figures. */
function docsSection(r: { date: string; cores: number; runs: Run[]; median: Median; met: { detected: boolean; running: boolean } }): string {
  const day = r.date.slice(0, 10);
  const mb = (b: number | null) => (b === null ? '?' : `${(b / 1e6).toFixed(1)} MB`);
  const k = (n: number) => `${Math.round(n / 1000).toLocaleString('en')}k`;
  const tl = (x: Run, key: keyof Run['timeline']) => (x.timeline[key] === null ? '?' : ms(x.timeline[key]!));
  const met = (ok: boolean) => (ok ? 'met' : '**not met**');
  const loaded = r.runs.filter((x) => x.loadAverage1m > r.cores).length;
  const intro = wrap(`\`npm run bench:recovery\` — \`generator (${KEYS.toLocaleString('en')} uniform keys, capped at
    ${RATE.toLocaleString('en')} events/s) → keyBy(user) → count (p=2) → ${SINK}\`, on ${WORKERS} worker processes with
    ${SLOTS} slots each, checkpoints every ${CHECKPOINT_INTERVAL_MS / 1000} s. The sink is the log sink (it keeps a sample
    of the latest records), so that no sink's writes dominate the rate. Each run starts a fresh stack, runs
    ${FILL_EVENTS.toLocaleString('en')} events into count (about ${((1 - Math.exp(-FILL_EVENTS / KEYS)) * 100).toFixed(1)} %
    of the keys), waits for a checkpoint taken after that to complete, averages count's records/s over
    ${BEFORE_MS / 1000} s, then \`kill -9\`s a worker process that runs a count subtask (T0). The control plane finds
    the failure by heartbeats (\`HEARTBEAT_TIMEOUT_MS\` ${HEARTBEAT_TIMEOUT_MS.toLocaleString('en')} ms, workers beat every
    500 ms); \`WORKER_LOCK_MS=30000\` keeps BullMQ's stall detection out of it. Detected: the recovery record's
    \`detectedAt\`. Running again: its \`runningAt\`, once every subtask of the new attempt runs with its state loaded.
    Back to rate: the first poll (every ${POLL_MS} ms) of the new attempt with count's records/s ≥ ${BACK_TO_RATE * 100} %
    of the rate before (not reached within ${BACK_TIMEOUT_MS / 1000} s: "not within"). All three from T0. Rate after:
    count's records/s ${AFTER_WINDOW_MS[0] / 1000}–${AFTER_WINDOW_MS[1] / 1000} s after the job runs again. The ${WORKERS - 1}
    remaining worker processes take the new attempt's three subtasks as placement gives them out: by what each
    operator used in the 5 s before the failure, to the least loaded worker (README, "How it runs"; "placed by" in the
    table, in cores per subtask), and a worker process runs its subtasks on one thread, so the placement (in the table)
    can change the pipeline's capacity. Output: \`docs/benchmarks/recovery.json\`; this
    part of the section down to the line that ends it is rewritten by each run, what follows that line is kept.`);
  const targets = wrap(`Targets: detected ≤ ${TARGETS.detectedMs / 1000} s — ${met(r.met.detected)} (median
    ${ms(r.median.detectedMs)}). Running again ≤ ${TARGETS.runningMs / 1000} s — ${met(r.met.running)} (median
    ${ms(r.median.runningMs)}).${
      loaded
        ? ` In ${loaded} of ${r.runs.length} runs the load average was above the ${r.cores} cores: other processes shared
    the machine, so read these figures as upper bounds.`
        : ''
    }${r.runs
      .filter((x) => x.recoveriesBeforeKill.length)
      .map(
        (x) => ` In run ${x.run} the job also recovered before the kill (${x.recoveriesBeforeKill.join('; ')}); the fill counted again from there.`,
      )
      .join('')} Detection cannot come sooner than the heartbeat timeout after the killed worker's last heartbeat (checked every
    250 ms), so from T0 it normally takes between ${ms(HEARTBEAT_TIMEOUT_MS - 500)} and ${ms(HEARTBEAT_TIMEOUT_MS + 250)}. The rest
    is the control plane ending the old attempt, a 200 ms backoff, the workers picking up the new subtasks, each
    opening (job, routes, connections) and loading its key groups from Postgres, and the RUNNING transition.`);
  return `## Recovery from a killed worker

${intro}

| ${day}, ${r.cores} cores | load (1 min) | subtasks per worker process, before → after | placed by | checkpoint | rate before | detected | running again | back to rate | rate after |
|---|---|---|---|---|---|---|---|---|---|
${r.runs
  .map(
    (x) =>
      `| run ${x.run} | ${x.loadAverage1m.toFixed(2)} | ${placement(x.placementBefore, x.killedWorker)} → ${placement(x.placementAfter)} | ${placedBy(x.costs)} | ${mb(x.checkpoint.bytes)} | ${k(x.rateBefore)}/s | ${ms(x.detectedMs)} | ${ms(x.runningMs)} | ${backMs(x.backToRateMs)} | ${k(x.rateAfter)}/s |`,
  )
  .join('\n')}
| **median** | | | | | ${k(r.median.rateBefore)}/s | **${ms(r.median.detectedMs)}** | **${ms(r.median.runningMs)}** | **${backMs(r.median.backToRateMs)}** | ${k(r.median.rateAfter)}/s |

Where the time went, from T0 (the killed worker's last heartbeat came before it):

| run | last heartbeat | detected | RECOVERING recorded | subtasks enqueued (after the backoff) | last picked up | longest state load | last subtask running | job running (recovery record) |
|---|---|---|---|---|---|---|---|---|
${r.runs
  .map(
    (x) =>
      `| ${x.run} | ${tl(x, 'lastHeartbeatMs')} | ${tl(x, 'detectedMs')} | ${tl(x, 'recoveringEventMs')} | ${tl(x, 'enqueuedMs')} | ${tl(x, 'lastPickedMs')} | ${x.restoreMs === null ? '?' : ms(x.restoreMs)} (${x.keyGroupsRestored} key groups, ${mb(x.bytesRestored)} in all) | ${tl(x, 'lastSubtaskRunningMs')} | ${tl(x, 'runningMs')} |`,
  )
  .join('\n')}

${targets}
${GENERATED_END}
`;
}

/** Ends the part of the section a run rewrites: before-and-after sets and other history written below it stay. */
const GENERATED_END = '<!-- the latest run of npm run bench:recovery ends here -->';

function writeDocs(section: string) {
  const file = fileURLToPath(new URL('../../../docs/benchmarks.md', import.meta.url));
  const doc = readFileSync(file, 'utf8');
  const start = doc.indexOf('\n## Recovery');
  if (start === -1) return writeFileSync(file, `${doc.trimEnd()}\n\n${section}`);
  const next = doc.indexOf('\n## ', start + 1);
  const generatedEnd = doc.indexOf(GENERATED_END, start);
  // The rest of the section after the generated part (history) stays; a section without the marker is replaced whole.
  const rest =
    generatedEnd !== -1 && (next === -1 || generatedEnd < next)
      ? doc.slice(generatedEnd + GENERATED_END.length + 1)
      : next === -1
        ? ''
        : `\n${doc.slice(next + 1)}`;
  writeFileSync(file, `${doc.slice(0, start)}\n${section}${rest}`);
}

const dbUrl = await benchDatabase();
// The control plane runs in this process: its log lines would bury the figures.
process.env.LOG_LEVEL ??= 'warn';
try {
  console.log(
    `recovery benchmark: ${KEYS.toLocaleString('en')} keys, ${SINK} sink, ${RUNS} runs, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const runs: Run[] = [];
  for (let run = 1; run <= RUNS; run++) {
    const x = await runOnce(run);
    runs.push(x);
    console.log(
      `run ${x.run} (load ${x.loadAverage1m}): ${placement(x.placementBefore, x.killedWorker)} → ${placement(x.placementAfter)}; checkpoint ${((x.checkpoint.bytes ?? 0) / 1e6).toFixed(1)} MB, ` +
        `${x.rateBefore.toLocaleString('en')} records/s before; placed by ${placedBy(x.costs)}\n` +
        `  detected ${ms(x.detectedMs)}, running again ${ms(x.runningMs)}, back to rate ${backMs(x.backToRateMs)}, ` +
        `${x.rateAfter.toLocaleString('en')} records/s after ` +
        `(restore ${x.restoreMs} ms, ${x.keyGroupsRestored} key groups, ${(x.bytesRestored / 1e6).toFixed(1)} MB)\n` +
        `  timeline from T0: ${Object.entries(x.timeline)
          .map(([k, v]) => `${k.replace(/Ms$/, '')} ${v}`)
          .join(', ')}\n` +
        x.subtasks
          .map((t) => `  ${t.subtask} on ${t.worker}: picked up ${t.pickedMs}, running ${t.runningMs}, state load ${t.restoreMs} ms`)
          .join('\n'),
    );
  }
  const backToRate = median(runs.map((x) => x.backToRateMs ?? Infinity));
  const m: Median = {
    rateBefore: median(runs.map((x) => x.rateBefore)),
    detectedMs: median(runs.map((x) => x.detectedMs)),
    runningMs: median(runs.map((x) => x.runningMs)),
    backToRateMs: Number.isFinite(backToRate) ? backToRate : null,
    rateAfter: median(runs.map((x) => x.rateAfter)),
    restoreMs: median(runs.map((x) => x.restoreMs ?? 0)),
  };
  const met = { detected: m.detectedMs <= TARGETS.detectedMs, running: m.runningMs <= TARGETS.runningMs };
  console.log(
    `median of ${runs.length}: detected ${ms(m.detectedMs)} (target ≤ ${ms(TARGETS.detectedMs)}: ${met.detected ? 'met' : 'NOT met'}), ` +
      `running again ${ms(m.runningMs)} (target ≤ ${ms(TARGETS.runningMs)}: ${met.running ? 'met' : 'NOT met'}), back to rate ${backMs(m.backToRateMs)}`,
  );
  const result = {
    date: new Date().toISOString(),
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    loadAverageAtEnd: loadavg().map((l) => Number(l.toFixed(2))),
    settings: {
      keys: KEYS,
      rate: RATE,
      fillEvents: FILL_EVENTS,
      skew: 'uniform',
      countParallelism: 2,
      sink: SINK,
      workers: WORKERS,
      slotsPerWorker: SLOTS,
      checkpointIntervalMs: CHECKPOINT_INTERVAL_MS,
      heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS,
      workerLockMs: Number(STACK_ENV.WORKER_LOCK_MS),
      rateBeforeOverMs: BEFORE_MS,
      pollMs: POLL_MS,
      backToRateFraction: BACK_TO_RATE,
      backTimeoutMs: BACK_TIMEOUT_MS,
      rateAfterWindowMs: AFTER_WINDOW_MS,
      // Unbounded: the source never ends during a run.
      total: null,
    },
    targets: { ...TARGETS, met },
    median: m,
    runs,
  };
  const out = fileURLToPath(new URL('../../../docs/benchmarks/', import.meta.url));
  mkdirSync(out, { recursive: true });
  writeFileSync(`${out}recovery.json`, `${JSON.stringify(result, null, 2)}\n`);
  writeDocs(docsSection({ date: result.date, cores: result.cores, runs, median: m, met }));
  console.log('wrote docs/benchmarks/recovery.json and the Recovery section of docs/benchmarks.md');
} finally {
  await dropDatabase(dbUrl);
}
process.exit(0);
