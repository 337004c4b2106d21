import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countPipeline, expectExactCounts, startStack, waitFor, waitForFinished, type Stack } from './harness.ts';
import { startRedisServer, type RedisServer } from './redisServer.ts';

/**
 * The chaos test of DESIGN §7–§8: while a keyed count runs into an exactly-once Postgres sink, five workers are
 * SIGKILLed, the control plane restarts once and Redis restarts empty once; every count must still be exact.
 * KEYFLOW_CHAOS_SEED=n replays one run's choices (victims, moments, order of faults).
 */
const TEST_TIMEOUT_MS = 300_000;
const TABLE = 'chaos_counts';
// About 3,000,000 / rate seconds of events, plus each recovery's pause and replay: long enough for seven faults.
const settings = { seed: 23, rate: 40_000, keys: 100_000, skew: 'uniform', total: 3_000_000, splits: 8 } as const;
const graph = countPipeline(TABLE, settings, { flushIntervalMs: 200 });

type FaultKind = 'kill worker' | 'restart control' | 'restart redis empty';
interface Fault {
  kind: FaultKind;
  at: number;
  detail: string;
}

/** mulberry32: a small seeded generator, so a failing run's choices can be replayed. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Runs `text` as the sinks' role, in their schema. */
async function sql<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: process.env.KEYFLOW_SINK_DATABASE_URL });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

describe('chaos', () => {
  let redis: RedisServer;
  let stack: Stack;
  beforeAll(async () => {
    // A Redis of this test's own: restarting it empty touches no other test's keys.
    redis = await startRedisServer({ keys: () => `${stack.prefix}:*` });
    stack = await startStack({
      workers: 3,
      env: { REDIS_URL: redis.url, HEARTBEAT_TIMEOUT_MS: '2500', MAX_RESTARTS: '20', WORKER_LOCK_MS: '30000' },
    });
  });
  afterAll(async () => {
    // The stack's teardown talks to Redis: bring it back if the test stopped while it was down.
    if (redis && !redis.running) await redis.restart();
    await stack?.close();
    await redis?.stop();
  });

  it(
    'five killed workers, a control plane restart and an empty Redis lose and duplicate no count',
    async () => {
      const startedAt = Date.now();
      const seed = Number(process.env.KEYFLOW_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
      console.log(`[chaos] seed ${seed} (KEYFLOW_CHAOS_SEED=${seed} replays this run's choices)`);
      const random = seededRandom(seed);

      const p = await stack.client.createPipeline({ name: `chaos-${stack.prefix}`, graph });
      const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 1000 });
      const elapsed = (at = Date.now()) => `+${((at - startedAt) / 1000).toFixed(1)} s`;

      /** The job is RUNNING and has completed a checkpoint triggered after `since`: it made progress since then. */
      const progressedSince = (since: number, what: string) =>
        waitFor(
          async () => {
            const j = await stack.client.getJob(job.id);
            if (j.state === 'FINISHED')
              throw new Error(`the job finished before ${what}: lower the generator's rate so that it runs through every fault`);
            if (j.state === 'FAILED' || j.state === 'CANCELED') throw new Error(`job ${j.state} before ${what}: ${j.failureReason}`);
            if (j.state !== 'RUNNING') return false;
            const checkpoints = await stack.client.listCheckpoints(job.id);
            return checkpoints.find((c) => c.status === 'COMPLETED' && Date.parse(c.triggeredAt) > since);
          },
          90_000,
          `a checkpoint completed after ${elapsed(since)}, before ${what}`,
        );

      // Redis goes last: its recovery is the newest, and the faults before it are tested even when it fails.
      const plan: FaultKind[] = [
        ...shuffled<FaultKind>(['kill worker', 'kill worker', 'kill worker', 'kill worker', 'kill worker', 'restart control'], random),
        'restart redis empty',
      ];
      const faults: Fault[] = [];
      let since = 0;
      for (const [i, kind] of plan.entries()) {
        const what = `fault ${i + 1} (${kind})`;
        const cp = await progressedSince(since, what);
        console.log(`[chaos] ${elapsed()} checkpoint ${cp.number} completed; ${what} next`);
        await new Promise((r) => setTimeout(r, Math.floor(random() * 5000)));
        const at = Date.now();
        let detail: string;
        if (kind === 'kill worker') {
          // A live worker process that runs some of the current attempt's subtasks: killing an idle one tests nothing.
          // (A killed worker stays listed until its heartbeat key expires, so the list alone is not enough.)
          const { attempt } = await stack.client.getJob(job.id);
          const alive = new Map(stack.workers.filter((w) => w.exitCode === null && w.signalCode === null).map((w) => [w.pid, w]));
          const busy = await waitFor(
            async () => {
              const list = (await stack.client.listWorkers()).filter(
                (w) => alive.has(w.pid) && w.subtasks.some((s) => s.jobId === job.id && s.attempt === attempt),
              );
              return list.length > 0 && list;
            },
            10_000,
            `a live worker running a subtask of attempt ${attempt}, for ${what}`,
          );
          const victim = busy[Math.floor(random() * busy.length)]!;
          const child = alive.get(victim.pid)!;
          child.kill('SIGKILL');
          await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
          const replacement = await stack.addWorker();
          const subtasks = victim.subtasks.filter((s) => s.jobId === job.id && s.attempt === attempt).map((s) => `${s.vertexId}#${s.index}`);
          detail = `SIGKILL ${victim.id} (pid ${victim.pid}, running ${subtasks.join(', ')}); replaced by pid ${replacement.pid}`;
        } else if (kind === 'restart control') {
          const from = stack.url;
          const down = Math.floor(random() * 2000);
          await stack.restartControl(down);
          detail = `${from} → ${stack.url}, down for ${down} ms`;
        } else {
          await redis.kill();
          const down = Math.floor(random() * 1000);
          await new Promise((r) => setTimeout(r, down));
          await redis.restart();
          detail = `SIGKILL ${redis.what}, restarted empty after ${down} ms`;
        }
        faults.push({ kind, at, detail });
        console.log(`[chaos] ${elapsed(at)} fault ${i + 1}: ${kind}: ${detail}`);
        since = at;
      }

      const done = await waitForFinished(stack, job.id, Math.max(30_000, startedAt + TEST_TIMEOUT_MS - 30_000 - Date.now()));
      const recoveries = (await stack.client.listRecoveries(job.id)).reverse();
      // The control plane cannot know when Redis lost its data (it records no detection time): the fault's time says.
      const afterFault = (detectedAt: string) => {
        const at = Date.parse(detectedAt);
        const i = faults.findLastIndex((f) => f.at <= at);
        return i < 0 ? '-' : `${at - faults[i]!.at} ms after fault ${i + 1}`;
      };
      console.log(
        [
          `[chaos] job ${done.state} after ${((Date.parse(done.endedAt!) - Date.parse(done.createdAt)) / 1000).toFixed(1)} s, attempt ${done.attempt}; seed ${seed}`,
          '[chaos] faults:',
          ...faults.map((f, i) => `  ${i + 1}. ${elapsed(f.at)} ${f.kind}: ${f.detail}`),
          '[chaos] recoveries (cause | detection ms | detected → running again ms | from checkpoint | status | detected):',
          ...recoveries.map(
            (r) =>
              `  attempt ${r.attempt}: ${r.cause} | ${r.detectionMs ?? '-'} | ${r.recoveryMs ?? '-'} | ${r.checkpointNumber ?? '-'} | ${r.status} | ${afterFault(r.detectedAt)}`,
          ),
        ].join('\n'),
      );

      await expectExactCounts(TABLE, settings);
      expect(await sql('SELECT count(*)::int AS n FROM keyflow_sink_pending WHERE job_id = $1', [job.id])).toEqual([{ n: 0 }]);

      // Every kill and the empty Redis needed a recovery, each from a completed checkpoint, and each ran again.
      for (const [i, f] of faults.entries()) {
        if (f.kind === 'restart control') continue;
        const next = faults[i + 1]?.at ?? Infinity;
        const own = recoveries.filter((r) => Date.parse(r.detectedAt) >= f.at && Date.parse(r.detectedAt) < next);
        expect(own.length, `recoveries after fault ${i + 1} (${f.kind})`).toBeGreaterThan(0);
      }
      expect(recoveries.every((r) => r.checkpointNumber !== null)).toBe(true);
      expect(recoveries.filter((r) => r.status !== 'RUNNING' && r.status !== 'SUPERSEDED')).toEqual([]);
      expect(done.attempt).toBe(recoveries.length + 1);
    },
    TEST_TIMEOUT_MS,
  );
});
