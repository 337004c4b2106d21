import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countPipeline, killWorkerRunning, startStack, type GeneratorSettings, type Stack } from './harness.ts';
import { converged, expectProgress, OutputSampler, requestRescale, stopAndExpectExact } from './rescaleDriver.ts';

/**
 * Off the scripted path: fast-check makes sequences of parallelism targets for a keyed count (up, down, the same
 * value, two requests within 50 ms, a request while a checkpoint is in flight), sometimes with a worker killed
 * with SIGKILL at some point, and after every step the job must converge to what was asked and make progress; at
 * the end the sink's output must have been exactly-once throughout and its counts exact.
 *
 * KEYFLOW_PROPERTY_RUNS=n runs more sequences (default 4); KEYFLOW_PROPERTY_SEED=s replays a run's sequences.
 */
const RUNS = Number(process.env.KEYFLOW_PROPERTY_RUNS ?? 4);
const SEED = Number(process.env.KEYFLOW_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));
const settings: GeneratorSettings = { seed: 5, rate: 15_000, keys: 4_000, skew: 'zipf', splits: 8 };

type How = 'settle' | 'back-to-back' | 'during-checkpoint' | 'during-savepoint';
interface Scenario {
  initial: number;
  /** The first request comes while the job is still being scheduled, before its first checkpoint. */
  early: boolean;
  steps: { target: number; how: How }[];
  /** A worker killed right after step `atStep`'s request (`afterMs` later, while it runs), or once it converged. */
  kill?: { atStep: number; midRescale: boolean; afterMs: number };
}

const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    initial: fc.integer({ min: 1, max: 3 }),
    early: fc.boolean(),
    steps: fc.array(
      fc.record({
        target: fc.integer({ min: 1, max: 4 }),
        how: fc.constantFrom<How>('settle', 'back-to-back', 'during-checkpoint', 'during-savepoint'),
      }),
      {
        minLength: 5,
        maxLength: 10,
      },
    ),
    kill: fc.option(fc.record({ atStep: fc.nat(9), midRescale: fc.boolean(), afterMs: fc.integer({ min: 0, max: 1500 }) }), { nil: undefined }),
  })
  .map((s) => (s.kill ? { ...s, kill: { ...s.kill, atStep: s.kill.atStep % s.steps.length } } : s));

describe('any sequence of rescales', () => {
  let stack: Stack;
  let run = 0;
  let replacements = 0;
  beforeAll(async () => {
    console.log(`rescale property: seed ${SEED}, ${RUNS} runs (replay with KEYFLOW_PROPERTY_SEED=${SEED})`);
    // Three workers of four slots: room for count at 4 plus a rescale's new subtasks, and for a killed worker's share.
    stack = await startStack({ workers: 3, slots: 4, env: { CHECKPOINT_RETENTION: '100000' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  /** Kills (SIGKILL) a worker that runs one of the job's subtasks and starts another in its place. */
  const killAWorker = async (jobId: string, log: string[]) => {
    const victim = await killWorkerRunning(stack, jobId);
    log.push(
      `killed ${victim.id} (${victim.subtasks
        .filter((s) => s.jobId === jobId)
        .map((s) => `${s.vertexId}#${s.index}`)
        .join(', ')})`,
    );
    await stack.addWorker(`replacement-${++replacements}`);
  };

  it(
    'converges to every target, keeps making progress after every step, and its output stays exactly-once',
    async () => {
      await fc.assert(
        fc.asyncProperty(scenario, async (s) => {
          const n = ++run;
          const started = Date.now();
          const table = `prop_${n}`;
          const log: string[] = [`initial ×${s.initial}${s.early ? ' (first request while scheduling)' : ''}`];
          const graph = countPipeline(table, settings);
          graph.vertices = graph.vertices.map((v) => (v.id === 'events' ? v : { ...v, parallelism: s.initial }));
          const p = await stack.client.createPipeline({ name: `${table}-${stack.prefix}`, graph });
          const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 1000 });
          const sampler = new OutputSampler(table, 300);
          try {
            if (!s.early) await converged(stack, job.id, 'count', s.initial);
            let desired = s.initial;
            for (const [i, step] of s.steps.entries()) {
              // Asked for by hand right before: the rescale waits for it (a 409 while a rescale holds the job is fine too).
              if (step.how === 'during-checkpoint') await stack.client.triggerCheckpoint(job.id).catch(() => {});
              if (step.how === 'during-savepoint') await stack.client.triggerSavepoint(job.id).catch(() => {});
              await requestRescale(stack, job.id, 'count', step.target);
              desired = step.target;
              log.push(`${step.how} ×${step.target}`);
              if (s.kill?.atStep === i) {
                // The fault's moment is part of the scenario (replayed by the seed), not a wait for something.
                if (s.kill.midRescale) await new Promise((r) => setTimeout(r, s.kill!.afterMs));
                else await converged(stack, job.id, 'count', desired);
                await killAWorker(job.id, log);
              }
              // Back to back: the next request follows within milliseconds, before this one ran.
              if (step.how === 'back-to-back' && i < s.steps.length - 1) continue;
              await converged(stack, job.id, 'count', desired);
              await expectProgress(stack, job.id, 'count');
            }
            const j = await stack.client.getJob(job.id);
            if (!s.kill) expect(j.attempt, 'no recovery without a fault').toBe(1);
            expect(j.stall).toBeNull();
          } catch (err) {
            throw new Error(`run ${n} (${log.join(' → ')}): ${(err as Error).message}`, { cause: err });
          } finally {
            await sampler.stop();
          }
          await stopAndExpectExact(stack, job.id, table, settings);
          const violations = await sampler.violations(stack.prisma, job.id, settings);
          expect(violations.slice(0, 5), `run ${n} (${log.join(' → ')}): output not exactly-once`).toEqual([]);
          console.log(`run ${n}: ${log.join(' → ')}; ${sampler.count} samples of the sink, exact (${Math.round((Date.now() - started) / 1000)} s)`);
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: true, verbose: true },
      );
    },
    RUNS * 240_000,
  );
});
