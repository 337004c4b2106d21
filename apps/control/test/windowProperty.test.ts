import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killWorkerRunning, startStack, waitForFinished, type Stack } from './harness.ts';
import { converged, expectProgress, requestRescale } from './rescaleDriver.ts';
import { expectedWindows, expectExactWindows, windowPipeline, type TimedGenerator } from './windowResults.ts';

/**
 * Off the scripted path for event time: fast-check makes sequences of live rescales of a tumbling and a session
 * window operator (up, down, the same value, back to back, during a checkpoint), sometimes with a worker killed with
 * SIGKILL along the way; after every step the job must converge and make progress, and at the end every window of
 * both must equal the independent computation.
 *
 * KEYFLOW_PROPERTY_RUNS=n runs more sequences (default 2); KEYFLOW_PROPERTY_SEED=s replays a run's sequences.
 */
const RUNS = Number(process.env.KEYFLOW_PROPERTY_RUNS ?? 2);
const SEED = Number(process.env.KEYFLOW_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));
const settings: TimedGenerator = {
  seed: 9,
  rate: 12_000,
  keys: 3_000,
  skew: 'zipf',
  total: 600_000,
  splits: 8,
  msPerEvent: 0.2,
  outOfOrderness: '1500ms',
  watermarkDelay: '1500ms',
};
const windows = { tumble: { size: '5s' }, session: { gap: '1s' } };

type How = 'settle' | 'back-to-back' | 'during-checkpoint';
interface Scenario {
  steps: { vertex: 'tumble' | 'session'; target: number; how: How }[];
  kill?: { atStep: number; afterMs: number };
}
const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    steps: fc.array(
      fc.record({
        vertex: fc.constantFrom<'tumble' | 'session'>('tumble', 'session'),
        target: fc.integer({ min: 1, max: 3 }),
        how: fc.constantFrom<How>('settle', 'back-to-back', 'during-checkpoint'),
      }),
      { minLength: 3, maxLength: 6 },
    ),
    kill: fc.option(fc.record({ atStep: fc.nat(5), afterMs: fc.integer({ min: 0, max: 1500 }) }), { nil: undefined }),
  })
  .map((s) => (s.kill ? { ...s, kill: { ...s.kill, atStep: s.kill.atStep % s.steps.length } } : s));

describe('any sequence of rescales and faults under event-time windows', () => {
  let stack: Stack;
  let run = 0;
  let replacements = 0;
  let tumbling: Map<string, number>;
  let sessions: Map<string, number>;
  beforeAll(async () => {
    console.log(`window property: seed ${SEED}, ${RUNS} runs (replay with KEYFLOW_PROPERTY_SEED=${SEED})`);
    stack = await startStack({ workers: 3, slots: 5, env: { WORKER_LOCK_MS: '30000', HEARTBEAT_TIMEOUT_MS: '2000' } });
    tumbling = expectedWindows(settings, { size: 5000 });
    sessions = expectedWindows(settings, { gap: 1000 });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it(
    'every window is exact, and the job converges and makes progress after every step',
    async () => {
      await fc.assert(
        fc.asyncProperty(scenario, async (s) => {
          const n = ++run;
          const started = Date.now();
          const prefix = `wprop_${n}`;
          const log: string[] = [];
          const p = await stack.client.createPipeline({ name: `${prefix}-${stack.prefix}`, graph: windowPipeline(prefix, settings, windows) });
          const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 1000 });
          const desired = { tumble: 2, session: 2 };
          try {
            await converged(stack, job.id, 'tumble', 2);
            for (const [i, step] of s.steps.entries()) {
              if (step.how === 'during-checkpoint') await stack.client.triggerCheckpoint(job.id).catch(() => {});
              await requestRescale(stack, job.id, step.vertex, step.target);
              desired[step.vertex] = step.target;
              log.push(`${step.how} ${step.vertex} ×${step.target}`);
              if (s.kill?.atStep === i) {
                // The fault's moment is part of the scenario (replayed by the seed), not a wait for something.
                await new Promise((r) => setTimeout(r, s.kill!.afterMs));
                const victim = await killWorkerRunning(stack, job.id);
                log.push(`killed ${victim.id}`);
                await stack.addWorker(`replacement-${++replacements}`);
              }
              if (step.how === 'back-to-back' && i < s.steps.length - 1) continue;
              for (const v of ['tumble', 'session'] as const) await converged(stack, job.id, v, desired[v]);
              await expectProgress(stack, job.id, step.vertex);
            }
            await waitForFinished(stack, job.id, 180_000);
            await expectExactWindows(`${prefix}_tumble`, tumbling);
            await expectExactWindows(`${prefix}_session`, sessions);
          } catch (err) {
            throw new Error(`run ${n} (${log.join(' → ')}): ${(err as Error).message}`, { cause: err });
          }
          expect(log.length).toBe(s.steps.length + (s.kill ? 1 : 0));
          console.log(`run ${n}: ${log.join(' → ')}; every window exact (${Math.round((Date.now() - started) / 1000)} s)`);
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: true, verbose: true },
      );
    },
    RUNS * 300_000,
  );
});
