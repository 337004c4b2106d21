import type { GraphInput } from '@keyflow/core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killWorkerRunning, startStack, waitFor, waitForState, type Stack } from './harness.ts';
import { converged, requestRescale } from './rescaleDriver.ts';

/**
 * Off the scripted path for placement: fast-check makes sequences of what users do to the jobs of one pool (deploy,
 * rescale up or down, cancel, a worker killed with SIGKILL and replaced), and after every step every job runs, with
 * each operator spread as placement promises: a job that starts (deployed, or recovered) runs each operator's
 * subtasks on both workers, one apart at most; a rescale up never leaves an operator spread wider than before, nor
 * wider than one apart when it was even. (A rescale down stops the highest indexes wherever they run: it can leave
 * an operator uneven, which the next rescale up mends.) Once a worker was killed in a sequence, only progress is
 * asserted: the spread after a loss is best effort (a dead worker counts as live until its heartbeat is three beats
 * old, and the old attempt's subtasks may still hold slots), and seeds that checked it failed.
 *
 * KEYFLOW_PROPERTY_RUNS=n runs more sequences (default 6); KEYFLOW_PROPERTY_SEED=s replays a run's sequences.
 */
const RUNS = Number(process.env.KEYFLOW_PROPERTY_RUNS ?? 6);
const SEED = Number(process.env.KEYFLOW_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** Two live workers of this many slots: more than every job together may use, so that no slot decides a placement. */
const SLOTS = 8;
const MAX_SUBTASKS = 12;

type Chain = 'events' | 'count';
type Action =
  | { do: 'deploy'; events: number; count: number }
  | { do: 'rescale'; job: number; chain: Chain; to: number }
  | { do: 'cancel'; job: number }
  | { do: 'kill' };

const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({ do: fc.constant('deploy' as const), events: fc.integer({ min: 1, max: 3 }), count: fc.integer({ min: 1, max: 3 }) }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      do: fc.constant('rescale' as const),
      job: fc.nat(9),
      chain: fc.constantFrom<Chain>('events', 'count'),
      to: fc.integer({ min: 1, max: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ do: fc.constant('cancel' as const), job: fc.nat(9) }) },
  { weight: 1, arbitrary: fc.record({ do: fc.constant('kill' as const) }) },
);

const pipeline = (p: { events: number; count: number }): GraphInput => ({
  vertices: [
    { id: 'events', type: 'generator', parallelism: p.events, settings: { seed: 9, rate: 2000, keys: 1000, skew: 'uniform', splits: 12 } },
    { id: 'count', type: 'count', parallelism: p.count },
    { id: 'sink', type: 'blackhole', parallelism: p.count },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'sink', partitioning: 'forward' },
  ],
});

interface Live {
  id: string;
  attempt: number;
  parallelism: Record<Chain, number>;
  /** Per chain, the widest spread (most minus fewest subtasks on one live worker) placement may leave it at. */
  allowed: Record<Chain, number>;
}

describe('any sequence of deploys, rescales, cancels and killed workers', () => {
  let stack: Stack;
  let run = 0;
  let replacements = 0;
  beforeAll(async () => {
    console.log(`placement property: seed ${SEED}, ${RUNS} runs (replay with KEYFLOW_PROPERTY_SEED=${SEED})`);
    stack = await startStack({ workers: 2, slots: SLOTS });
  });
  afterAll(async () => {
    await stack?.close();
  });

  /** Per live worker, how many subtasks of each chain of the job's current attempt it runs, once all of them run. */
  const spreadOf = async (job: Live) =>
    waitFor(
      async () => {
        const { state, attempt } = await stack.client.getJob(job.id);
        if (state !== 'RUNNING') return false;
        const workers = (await stack.client.listWorkers()).filter((w) => w.heartbeatAgeMs < 1500);
        const running = workers.map((w) => w.subtasks.filter((s) => s.jobId === job.id && s.attempt === attempt));
        if (running.flat().length !== job.parallelism.events + job.parallelism.count) return false;
        const widest = (chain: Chain) => {
          const counts = running.map((subtasks) => subtasks.filter((s) => s.vertexId === chain).length);
          return Math.max(...counts) - Math.min(...counts);
        };
        return {
          attempt,
          events: widest('events'),
          count: widest('count'),
          placed: running.map((s) => s.map((x) => `${x.vertexId}#${x.index}`).join('+')),
        };
      },
      60_000,
      `job ${job.id} running with all its subtasks listed`,
    );

  it(
    'every job runs after every step, each operator spread over the workers as placement promises',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(action, { minLength: 4, maxLength: 8 }), async (actions) => {
          const n = ++run;
          const live: Live[] = [];
          const log: string[] = [];
          let lost = false;
          try {
            for (const a of actions) {
              const used = live.reduce((s, j) => s + j.parallelism.events + j.parallelism.count, 0);
              if (a.do === 'deploy') {
                if (used + a.events + a.count > MAX_SUBTASKS) continue;
                const p = await stack.client.createPipeline({ name: `place-${n}-${log.length}-${stack.prefix}`, graph: pipeline(a) });
                const { id } = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 1000 });
                await waitForState(stack, id, 'RUNNING', 60_000);
                live.push({ id, attempt: 1, parallelism: { events: a.events, count: a.count }, allowed: { events: 1, count: 1 } });
                log.push(`deploy events ×${a.events} count ×${a.count}`);
              } else if (a.do === 'rescale' && live.length) {
                const job = live[a.job % live.length]!;
                const from = job.parallelism[a.chain];
                if (a.to === from || used - from + a.to > MAX_SUBTASKS) continue;
                await requestRescale(stack, job.id, a.chain, a.to);
                job.parallelism[a.chain] = a.to;
                await converged(stack, job.id, a.chain, a.to);
                job.allowed[a.chain] = a.to > from ? Math.max(1, job.allowed[a.chain]) : Infinity;
                log.push(`${a.chain} ×${from} → ×${a.to}`);
              } else if (a.do === 'cancel' && live.length) {
                const [job] = live.splice(a.job % live.length, 1);
                await stack.client.cancelJob(job!.id);
                await waitForState(stack, job!.id, 'CANCELED', 30_000);
                log.push('cancel');
              } else if (a.do === 'kill' && live.length) {
                // The replacement first, so that the pool has two live workers when the jobs recover.
                await stack.addWorker(`replacement-${++replacements}`);
                const victim = await killWorkerRunning(stack, live[0]!.id);
                log.push(`kill ${victim.id}`);
                lost = true;
                // Every job that ran a subtask there recovers: its new attempt is what the step checks.
                for (const job of live.filter((j) => victim.subtasks.some((s) => s.jobId === j.id))) {
                  await waitFor(async () => (await stack.client.getJob(job.id)).attempt > job.attempt, 60_000, `job ${job.id} to recover`);
                }
              } else continue;
              for (const job of live) {
                const spread = await spreadOf(job);
                // A job that started again (recovered) placed every subtask anew.
                if (spread.attempt !== job.attempt) job.allowed = { events: 1, count: 1 };
                job.attempt = spread.attempt;
                for (const chain of ['events', 'count'] as const) {
                  if (lost) continue;
                  expect(spread[chain], `${chain} of job ${job.id} (attempt ${job.attempt}): ${spread.placed.join(' / ')}`).toBeLessThanOrEqual(
                    job.allowed[chain],
                  );
                  // A rescale down may leave it wider; it may not grow by anything else.
                  job.allowed[chain] = spread[chain];
                }
              }
            }
          } catch (err) {
            throw new Error(`run ${n} (${log.join(' → ')}): ${(err as Error).message}`, { cause: err });
          } finally {
            for (const job of live) await stack.client.cancelJob(job.id).catch(() => {});
          }
          console.log(`run ${n}: ${log.join(' → ')}`);
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: true, verbose: true },
      );
    },
    RUNS * 300_000,
  );
});
