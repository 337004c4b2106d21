import { randomBytes } from 'node:crypto';
import { redisKeys, type TaskData } from '@keyflow/runtime';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { Placement } from '../src/placement.ts';

/**
 * Placement's claim script against real Redis, with workers that are only heartbeats and `Placement`s: which worker
 * takes which task when tasks carry a cost (a recovered attempt's, from what each chain used before) and when they
 * do not. The whole stack's placement is tested in the control plane's placement tests.
 *
 * KEYFLOW_PROPERTY_RUNS=n runs more cases (default 40); KEYFLOW_PROPERTY_SEED=s replays a run.
 */
const RUNS = Number(process.env.KEYFLOW_PROPERTY_RUNS ?? 40);
const SEED = Number(process.env.KEYFLOW_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** Loads within one step of this (milli-cores) count as even in the claim script. */
const TOLERANCE = 50;

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
let run = 0;
afterAll(async () => {
  const keys = await redis.keys('placement-*');
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

/** A pool of `n` live workers (heartbeats stamped with Redis's clock) of `slots` slots each, in a prefix of its own. */
async function pool(n: number, slots = 8) {
  const keys = redisKeys(`placement-${randomBytes(3).toString('hex')}-${run++}`);
  const ids = Array.from({ length: n }, (_, i) => `w${i}`);
  const [secs] = await redis.time();
  for (const id of ids) {
    await redis.hset(keys.worker(id), { id, slots: String(slots), lastHeartbeat: String(Number(secs) * 1000 + 60_000), operators: '[]' });
    await redis.sadd(keys.workers, id);
  }
  const placements = new Map(ids.map((id) => [id, new Placement(redis, keys, id, 10_000, '[]')]));
  return { keys, ids, placements };
}

const load = (tasks: TaskData[]) => tasks.reduce((n, t) => n + (t.cost ?? 0), 0);

const task = (vertexId: string, index: number, cost?: number): TaskData => ({
  jobId: 'job',
  attempt: 2,
  vertexId,
  index,
  parallelism: 4,
  ...(cost !== undefined && { cost }),
});

/**
 * Hands each task, in queue order, to a worker that picks it (`pick` chooses among the pool), as BullMQ does: one
 * the script hands back goes to the worker it named, or (every other time) to any worker. Returns who took what.
 */
async function place(p: Awaited<ReturnType<typeof pool>>, tasks: TaskData[], pick: () => number) {
  const taken = new Map<string, TaskData[]>(p.ids.map((id) => [id, []]));
  /** Per task taken: each worker's load (milli-cores) just before, and who took it. */
  const takes: { loads: Map<string, number>; by: string }[] = [];
  for (const t of tasks) {
    let worker = p.ids[pick() % p.ids.length]!;
    for (let tries = 0; ; tries++) {
      if (tries > 200) throw new Error(`${t.vertexId}#${t.index} handed back 200 times`);
      const loads = new Map([...taken].map(([id, ts]) => [id, load(ts)]));
      const better = await p.placements.get(worker)!.claim(t, false);
      if (!better) {
        takes.push({ loads, by: worker });
        break;
      }
      expect(p.ids).toContain(better);
      worker = tries % 2 === 0 ? better : p.ids[pick() % p.ids.length]!;
    }
    taken.get(worker)!.push(t);
  }
  return { taken, takes };
}

describe('placement by cost', () => {
  it('gives a source that costs as much as two counts a worker of its own, whichever worker asks first', async () => {
    // The recovery benchmark's job: one source at a million events a second and two counts, on two workers.
    for (const first of [0, 1]) {
      const p = await pool(2);
      let n = first;
      const { taken } = await place(p, [task('events', 0, 950), task('count', 0, 450), task('count', 1, 450)], () => n++);
      const layouts = [...taken.values()].map((ts) => ts.map((t) => `${t.vertexId}#${t.index}`).sort());
      expect(layouts.sort()).toEqual([['count#0', 'count#1'], ['events#0']]);
    }
  });

  it('without costs spreads each operator by count, as before', async () => {
    const p = await pool(2);
    let n = 0;
    const { taken } = await place(p, [task('events', 0), task('count', 0), task('count', 1)], () => n++);
    for (const ts of taken.values()) expect(ts.filter((t) => t.vertexId === 'count')).toHaveLength(1);
  });

  it('counts a subtask placed without a cost as half a core, and forgets what ended', async () => {
    const p = await pool(2);
    // w1 runs one subtask of another job placed by count (500 milli-cores by the rule), w0 two of 100 each: by count
    // w1 runs less, by cost w0 does.
    const other = { ...task('other', 0), jobId: 'other' };
    await p.placements.get('w1')!.claim(other, true);
    const small = [task('events', 0, 100), task('events', 1, 100)];
    for (const t of small) await p.placements.get('w0')!.claim(t, true);
    expect(await p.placements.get('w1')!.claim(task('count', 0, 100), false)).toBe('w0');
    // Once w1's has ended it is the lighter one.
    await p.placements.get('w1')!.release(other);
    expect(await p.placements.get('w0')!.claim(task('count', 0, 100), false)).toBe('w1');
    for (const t of small) await p.placements.get('w0')!.release(t);
    for (const id of p.ids) expect(await redis.hgetall(p.keys.workerCost(id)), id).toEqual({});
    expect(await redis.hgetall(p.keys.workerLoad)).toEqual({});
  });

  it("leaves out the job's attempt before, which is winding down, but not other jobs", async () => {
    const p = await pool(2);
    // w0 still runs the failed attempt 1's source (placed by count) while attempt 2's tasks are placed.
    await p.placements.get('w0')!.claim({ ...task('events', 0), attempt: 1 }, true);
    await p.placements.get('w0')!.claim(task('events', 0, 600), true);
    expect(await p.placements.get('w0')!.claim(task('count', 0, 500), false)).toBe('w1');
    // Another job's subtask counts.
    await p.placements.get('w1')!.claim({ ...task('other', 0), jobId: 'other', attempt: 1 }, true);
    await p.placements.get('w1')!.claim({ ...task('other', 1), jobId: 'other', attempt: 1 }, true);
    expect(await p.placements.get('w1')!.claim(task('count', 0, 500), false)).toBe('w0');
  });

  it('drops the load of a worker whose heartbeat is gone', async () => {
    const p = await pool(2);
    await p.placements.get('w1')!.claim(task('events', 0, 900), true);
    await redis.del(p.keys.worker('w1'));
    expect(await p.placements.get('w0')!.claim(task('count', 0, 100), false)).toBeUndefined();
    expect(await redis.exists(p.keys.workerCost('w1'))).toBe(0);
    expect(await redis.hget(p.keys.workerLoad, 'w1')).toBeNull();
  });

  it('whatever the costs and whoever asks, each task goes to a worker within a step of the least loaded (property)', async () => {
    console.log(`placement by cost: seed ${SEED}, ${RUNS} runs (KEYFLOW_PROPERTY_SEED / KEYFLOW_PROPERTY_RUNS)`);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 4 }),
        fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(99), { minLength: 1, maxLength: 50 }),
        fc.boolean(),
        async (workers, costs, picks, sorted) => {
          const p = await pool(workers, 16);
          let i = 0;
          // As the control plane enqueues them (costliest first), or in any order (tasks handed back come round again).
          const tasks = (sorted ? [...costs].sort((a, b) => b - a) : costs).map((c, k) => task(`op${k % 3}`, k, c));
          const { taken, takes } = await place(p, tasks, () => picks[i++ % picks.length]!);
          for (const { loads, by } of takes) {
            const least = Math.min(...loads.values());
            expect(loads.get(by), `taken by ${by} at loads ${[...loads.values()].join(', ')}`).toBeLessThan(least + TOLERANCE);
          }
          // So no worker ends above the even share by more than the costliest task (list scheduling's bound).
          const loads = [...taken.values()].map(load);
          expect(Math.max(...loads)).toBeLessThan(load(tasks) / workers + Math.max(...costs) + TOLERANCE);
          // And what Redis keeps per worker is what each took.
          for (const [id, ts] of taken) expect(Number((await redis.hget(p.keys.workerCost(id), 'all')) ?? 0), id).toBe(load(ts));
        },
      ),
      { numRuns: RUNS, seed: SEED },
    );
  });
});
