import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countPipeline, killWorkerRunning, startStack, tableCounts, waitFor, type GeneratorSettings, type Stack } from './harness.ts';
import { checkpointOffsets, countsAtOffsets } from './rescaleDriver.ts';

/**
 * Off the scripted path for jobs started from other jobs' checkpoints: fast-check makes sequences of a user's actions
 * on a keyed count whose retention keeps one checkpoint — start a new job from any job's latest checkpoint (a running
 * job's, a stopped one's savepoint, a canceled one's last), with or without checkpoints of its own, sometimes killing
 * a worker of it at once, before it has any; kill a worker of a running job; cancel one (perhaps the one another
 * started from); stop one with a savepoint; ask for a checkpoint. After every step each running job runs and makes
 * progress; at the end each one the test stopped holds exactly the counts of the events before its savepoint — all of
 * them since the first job started, however many jobs the state went through. A job that lost the state it started
 * from would count from nothing and fail that.
 *
 * KEYFLOW_PROPERTY_RUNS=n runs more sequences (default 5); KEYFLOW_PROPERTY_SEED=s replays a run's sequences.
 */
const RUNS = Number(process.env.KEYFLOW_PROPERTY_RUNS ?? 5);
const SEED = Number(process.env.KEYFLOW_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));
const settings: GeneratorSettings = { seed: 17, rate: 8_000, keys: 3_000, skew: 'zipf', splits: 4 };
/** Each job takes three slots (source, and count with its sink at 2); the pool has twelve. */
const MAX_RUNNING = 3;

type Action =
  { op: 'start-from'; source: number; ownCheckpoints: boolean; killAtOnce: boolean } | { op: 'kill' | 'cancel' | 'stop' | 'checkpoint'; job: number };

const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('start-from' as const), source: fc.nat(20), ownCheckpoints: fc.boolean(), killAtOnce: fc.boolean() }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constantFrom('kill' as const, 'cancel' as const, 'stop' as const, 'checkpoint' as const), job: fc.nat(20) }),
  },
);

interface Job {
  id: string;
  name: string;
  table: string;
  /** Source offsets per split of the checkpoint it started from (none for the first job: it starts at 0). */
  from: Map<number, number>;
  /** Whether it takes checkpoints of its own (every 400 ms), or none but those asked for. */
  ownCheckpoints: boolean;
  state: 'running' | 'stopped' | 'canceled';
}

describe('jobs started from other jobs’ checkpoints', () => {
  let stack: Stack;
  let run = 0;
  let replacements = 0;
  beforeAll(async () => {
    console.log(`lineage property: seed ${SEED}, ${RUNS} runs (replay with KEYFLOW_PROPERTY_SEED=${SEED})`);
    // A killed worker may run subtasks of every job: restarts add up over a sequence beyond the default allowance.
    stack = await startStack({ workers: 3, slots: 4, env: { CHECKPOINT_RETENTION: '1', MAX_RESTARTS: '1000' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  /** Each running job runs (recovered, if a fault hit it) and counts records again; a failed one fails the test at once. */
  const expectRunning = async (jobs: Job[]) => {
    for (const job of jobs.filter((j) => j.state === 'running')) {
      const before = await waitFor(
        async () => {
          const j = await stack.client.getJob(job.id);
          if (j.state === 'FAILED' || j.state === 'CANCELED' || j.state === 'FINISHED') throw new Error(`${job.name} ${j.state}: ${j.failureReason}`);
          return j.state === 'RUNNING' && j;
        },
        90_000,
        `${job.name} to run`,
      );
      const counted = before.metrics?.vertices.count?.recordsIn ?? 0;
      await waitFor(
        async () => {
          const j = await stack.client.getJob(job.id);
          if (j.state === 'FAILED') throw new Error(`${job.name} FAILED: ${j.failureReason}`);
          return j.state === 'RUNNING' && (j.metrics?.vertices.count?.recordsIn ?? 0) > counted && j.stall === null;
        },
        30_000,
        `${job.name} to count records (and not stall)`,
      );
    }
  };

  const killAWorkerOf = async (job: Job, log: string[]) => {
    await killWorkerRunning(stack, job.id);
    log.push(`kill a worker of ${job.name}`);
    await stack.addWorker(`lineage-replacement-${++replacements}`);
  };

  it(
    'every job runs after every step, and ends with exactly the counts since the first job began',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(action, { minLength: 5, maxLength: 10 }), async (actions) => {
          const n = ++run;
          const started = Date.now();
          const jobs: Job[] = [];
          const log: string[] = [];
          const table = (i: number) => `lineage_${n}_${i}`;
          const p = await stack.client.createPipeline({ name: `lineage-${n}-${stack.prefix}`, graph: countPipeline(table(0), settings) });
          try {
            const first = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 400 });
            jobs.push({ id: first.id, name: 'job 0', table: table(0), from: new Map(), ownCheckpoints: true, state: 'running' });
            await expectRunning(jobs);
            for (const next of actions) {
              const running = jobs.filter((j) => j.state === 'running');
              // With nothing running, what a user does next is start something: the step becomes a start.
              const a: Action =
                next.op !== 'start-from' && running.length === 0
                  ? { op: 'start-from', source: next.job, ownCheckpoints: next.op !== 'checkpoint', killAtOnce: next.op === 'kill' }
                  : next;
              if (a.op === 'start-from') {
                if (running.length >= MAX_RUNNING) continue;
                const source = jobs[a.source % jobs.length]!;
                const latest = (await stack.client.listCheckpoints(source.id))
                  .filter((c) => c.status === 'COMPLETED')
                  .sort((x, y) => y.number - x.number)[0];
                if (!latest) {
                  log.push(`nothing of ${source.name} to start from`);
                  continue;
                }
                const from = await checkpointOffsets(stack.prisma, latest.id);
                // Retention took it between the list and the read: a start from it would be refused (below).
                if (from.size !== settings.splits) continue;
                const i = jobs.length;
                await stack.client.createVersion(p.id, countPipeline(table(i), settings));
                const name = `job ${i}`;
                const job = await stack.client
                  .deployJob({ pipelineId: p.id, restoreFromCheckpointId: latest.id, checkpointIntervalMs: a.ownCheckpoints ? 400 : 3_600_000 })
                  .catch((err: Error) => {
                    // Retention may take it after the list: the start is refused with the reason, as a user would see.
                    if (!/is DISCARDED, not COMPLETED/.test(err.message)) throw err;
                    log.push(`${name} from #${latest.number} of ${source.name}: refused, discarded meanwhile`);
                  });
                if (!job) continue;
                jobs.push({ id: job.id, name, table: table(i), from, ownCheckpoints: a.ownCheckpoints, state: 'running' });
                log.push(
                  `${name} from #${latest.number} of ${source.name} (${source.state}${a.ownCheckpoints ? '' : ', no checkpoints of its own'})`,
                );
                if (a.killAtOnce) {
                  // Before its first checkpoint: it can only recover from the checkpoint it started from.
                  await waitFor(async () => (await stack.client.getJob(job.id)).state === 'RUNNING', 60_000, `${name} to run`);
                  await killAWorkerOf(jobs.at(-1)!, log);
                }
              } else {
                const job = running[a.job % running.length]!;
                if (a.op === 'kill') await killAWorkerOf(job, log);
                else if (a.op === 'checkpoint') {
                  const c = await stack.client.triggerCheckpoint(job.id).catch(() => undefined);
                  log.push(`checkpoint ${job.name}${c ? ` (#${c.number})` : ' (refused: one in flight)'}`);
                } else if (a.op === 'cancel') {
                  await stack.client.cancelJob(job.id);
                  job.state = 'canceled';
                  log.push(`cancel ${job.name}`);
                } else {
                  await stack.client.stopJob(job.id);
                  await waitFor(
                    async () => {
                      const j = await stack.client.getJob(job.id);
                      if (j.state === 'FAILED' || j.state === 'CANCELED') throw new Error(`${job.name} ${j.state}: ${j.failureReason}`);
                      return j.state === 'STOPPED';
                    },
                    60_000,
                    `${job.name} to stop with a savepoint`,
                  );
                  job.state = 'stopped';
                  log.push(`stop ${job.name}`);
                }
              }
              await expectRunning(jobs);
            }
            for (const job of jobs.filter((j) => j.state === 'running')) {
              await stack.client.stopJob(job.id);
              await waitFor(async () => (await stack.client.getJob(job.id)).state === 'STOPPED', 60_000, `${job.name} to stop with a savepoint`);
              job.state = 'stopped';
            }
            // Each stopped job's table: every key it wrote holds the count of every event before its savepoint, since
            // the first job began; every key whose count changed after the checkpoint it started from was written.
            for (const job of jobs.filter((j) => j.state === 'stopped')) {
              const savepoint = (await stack.client.listCheckpoints(job.id))
                .filter((c) => c.kind === 'SAVEPOINT' && c.status === 'COMPLETED')
                .sort((x, y) => y.number - x.number)[0]!;
              const expected = countsAtOffsets(settings, await checkpointOffsets(stack.prisma, savepoint.id));
              const before = countsAtOffsets(settings, job.from);
              const actual = await tableCounts(job.table);
              const wrong: string[] = [];
              for (const [key, v] of actual) if (expected.get(key) !== v) wrong.push(`${key} = ${v}, not ${expected.get(key)}`);
              for (const [key, v] of expected) if (!actual.has(key) && before.get(key) !== v) wrong.push(`${key} missing (${v})`);
              expect(wrong.slice(0, 5), `${job.name}: ${wrong.length} keys wrong`).toEqual([]);
            }
          } catch (err) {
            throw new Error(`run ${n} (${log.join(' → ')}): ${(err as Error).message}`, { cause: err });
          } finally {
            for (const job of jobs.filter((j) => j.state === 'running')) await stack.client.cancelJob(job.id).catch(() => {});
          }
          console.log(
            `run ${n}: ${log.join(' → ')}; ${jobs.filter((j) => j.state === 'stopped').length} jobs exact (${Math.round((Date.now() - started) / 1000)} s)`,
          );
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: true, verbose: true },
      );
    },
    RUNS * 300_000,
  );
});
