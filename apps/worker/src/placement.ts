import type { RedisKeys, TaskData } from '@keyflow/runtime';
import type { Redis } from 'ioredis';

/** How much of a core a subtask placed without a cost estimate counts for in a worker's load (milli-cores). */
const UNKNOWN_COST = 500;
/** Loads by cost within one step (milli-cores) count as even: CPU shares measured over a second are that noisy. */
const COST_STEP = 50;

/**
 * Takes the task for worker ARGV[1] unless another live worker with a free slot should run it: then returns that
 * worker's id and takes nothing. One script, so that two workers picking tasks at once each see what the other took.
 *
 * Workers are ranked by what they run: first, for a task with a cost (ARGV[7], milli-cores: a recovered attempt's
 * subtask, see TaskData.cost), what their subtasks cost in steps of COST_STEP (one placed without a cost counts as
 * UNKNOWN_COST; the job's attempt before this one, which is winding down, not at all); then their subtasks of the
 * task's attempt and vertex; then their subtasks in all. The task goes to the first in that order: by cost to the
 * least loaded worker, and among workers as loaded (or for tasks without a cost) each operator spread by count. A
 * strict order, so a task handed back never goes round in a circle.
 *
 * ARGV[4] '1' takes it regardless. A worker counts while its heartbeat (stamped with Redis's clock) is at most
 * ARGV[3] ms old and it loaded the same user operators (ARGV[6], as its heartbeat lists them), so that it can run the
 * task; the load of one whose heartbeat is gone is dropped. KEYS[1] workers' load (subtasks), KEYS[2] the attempt's
 * placement, KEYS[3] this worker's cost hash, then per other worker its heartbeat hash and its cost hash; ARGV[5]
 * the placement's time to live, ms; ARGV[8] what the task adds to its worker's cost (its cost, or UNKNOWN_COST);
 * ARGV[9] and ARGV[10] the cost hash's fields of the task's attempt and of the one before; ARGV[11…] the other
 * workers' ids, in the order of their keys.
 */
const claim = `
local me, vertex, cost = ARGV[1], ARGV[2], tonumber(ARGV[7])
local function step(costKey)
  if not cost then return 0 end
  local c = redis.call('HMGET', costKey, 'all', ARGV[10])
  return math.floor((tonumber(c[1] or '0') - tonumber(c[2] or '0')) / ${COST_STEP})
end
local function before(a, b)
  for i = 1, 3 do
    if a[i] ~= b[i] then return a[i] < b[i] end
  end
  return false
end
local mineAll = tonumber(redis.call('HGET', KEYS[1], me) or '0')
local best = { step(KEYS[3]), tonumber(redis.call('HGET', KEYS[2], me .. '|' .. vertex) or '0'), mineAll }
if ARGV[4] ~= '1' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local better
  for i = 11, #ARGV do
    local id, beatKey, costKey = ARGV[i], KEYS[2 * (i - 10) + 2], KEYS[2 * (i - 10) + 3]
    local beat = redis.call('HMGET', beatKey, 'slots', 'lastHeartbeat', 'operators')
    if not beat[1] then
      redis.call('HDEL', KEYS[1], id)
      redis.call('DEL', costKey)
    elseif now - tonumber(beat[2]) <= tonumber(ARGV[3]) and beat[3] == ARGV[6] then
      local all = tonumber(redis.call('HGET', KEYS[1], id) or '0')
      if all < tonumber(beat[1]) then
        local rank = { step(costKey), tonumber(redis.call('HGET', KEYS[2], id .. '|' .. vertex) or '0'), all }
        if before(rank, best) then best, better = rank, id end
      end
    end
  end
  if better then return better end
end
redis.call('HINCRBY', KEYS[1], me, 1)
redis.call('HINCRBY', KEYS[2], me .. '|' .. vertex, 1)
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('HINCRBY', KEYS[3], 'all', ARGV[8])
redis.call('HINCRBY', KEYS[3], ARGV[9], ARGV[8])
return ''
`;

/**
 * Counts a subtask of worker ARGV[1] and vertex ARGV[2] out (KEYS as `claim`'s first three), with what it added to
 * the worker's cost (ARGV[3]) under its attempt's field (ARGV[4]); a count at 0 goes.
 */
const release = `
local function down(key, field, by)
  local n = tonumber(redis.call('HGET', key, field) or '0')
  if n > by then redis.call('HINCRBY', key, field, -by) elseif n > 0 then redis.call('HDEL', key, field) end
end
down(KEYS[1], ARGV[1], 1)
down(KEYS[2], ARGV[1] .. '|' .. ARGV[2], 1)
down(KEYS[3], 'all', tonumber(ARGV[3]))
down(KEYS[3], ARGV[4], tonumber(ARGV[3]))
`;

interface PlacementRedis extends Redis {
  placementClaim(numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<string>;
  placementRelease(load: string, placement: string, cost: string, worker: string, vertex: string, added: number, attempt: string): Promise<void>;
}

/** How long the placement of an attempt is kept after its last task was taken (its subtasks end sooner or later). */
const PLACEMENT_TTL_MS = 24 * 3600_000;

/**
 * Spreads each operator's subtasks over the pool's workers, as Flink's `cluster.evenly-spread-out-slots` does.
 * BullMQ hands a task to whichever worker asks first, so one worker process (one thread) could take every subtask
 * of an operator while another stood idle with free slots: measured, a Nexmark q11 at p=2 ran 28 % slower so.
 * On picking a task, a worker asks whether another live worker with a free slot runs fewer of the attempt's
 * subtasks of that vertex (or as many, and fewer subtasks in all); if one does, the task is handed back for a
 * moment for it to take. Whoever picks a task handed back often enough takes it (`force`: the worker decides when).
 * A recovered attempt's tasks carry what their operators used before the failure, and go to the least loaded worker
 * by that first (the costliest are queued first): a source as costly as two counts then runs on a worker of its own
 * rather than beside one of them, which Flink's even spread would do.
 */
export class Placement {
  private readonly redis: PlacementRedis;

  constructor(
    redis: Redis,
    private readonly keys: RedisKeys,
    private readonly workerId: string,
    /** How old another worker's heartbeat may be for it to count as live. */
    private readonly liveMs: number,
    /** The user operators this worker loaded, as its heartbeat lists them (JSON). */
    private readonly operators: string,
  ) {
    if (!('placementClaim' in redis)) {
      // No fixed number of keys: the other workers' heartbeat and cost hashes follow the first three.
      redis.defineCommand('placementClaim', { lua: claim });
      redis.defineCommand('placementRelease', { numberOfKeys: 3, lua: release });
    }
    this.redis = redis as PlacementRedis;
  }

  /** Forgets what a worker of the same name ran before (it died): this one runs nothing yet. */
  async reset(): Promise<void> {
    await this.redis.multi().hdel(this.keys.workerLoad, this.workerId).del(this.keys.workerCost(this.workerId)).exec();
  }

  /** Takes the task (undefined), or names the worker it should go to instead; `force` takes it regardless. */
  async claim(task: TaskData, force: boolean): Promise<string | undefined> {
    const others = force ? [] : (await this.redis.smembers(this.keys.workers)).filter((id) => id !== this.workerId);
    const better = await this.redis.placementClaim(
      3 + 2 * others.length,
      this.keys.workerLoad,
      this.keys.placement(task.jobId, task.attempt),
      this.keys.workerCost(this.workerId),
      ...others.flatMap((id) => [this.keys.worker(id), this.keys.workerCost(id)]),
      this.workerId,
      task.vertexId,
      this.liveMs,
      force ? '1' : '0',
      PLACEMENT_TTL_MS,
      this.operators,
      task.cost ?? '',
      task.cost ?? UNKNOWN_COST,
      `${task.jobId}|${task.attempt}`,
      `${task.jobId}|${task.attempt - 1}`,
      ...others,
    );
    return better || undefined;
  }

  /** The subtask ended: it no longer counts for this worker. */
  async release(task: TaskData): Promise<void> {
    await this.redis.placementRelease(
      this.keys.workerLoad,
      this.keys.placement(task.jobId, task.attempt),
      this.keys.workerCost(this.workerId),
      this.workerId,
      task.vertexId,
      task.cost ?? UNKNOWN_COST,
      `${task.jobId}|${task.attempt}`,
    );
  }
}
