import type { RedisKeys, TaskData } from '@keyflow/runtime';
import type { Redis } from 'ioredis';

/**
 * Takes the task for worker ARGV[1] unless another live worker with a free slot runs fewer subtasks of the task's
 * attempt and vertex, or as many and fewer subtasks in all: then returns that worker's id and takes nothing. One
 * script, so that two workers picking tasks at once each see what the other took. ARGV[4] '1' takes it regardless.
 * A worker counts while its heartbeat (stamped with Redis's clock) is at most ARGV[3] ms old and it loaded the same
 * user operators (ARGV[6], as its heartbeat lists them), so that it can run the task; the load of one whose heartbeat
 * is gone is dropped. KEYS[1] workers' load, KEYS[2] the attempt's placement, KEYS[3…] the other workers' heartbeat
 * hashes; ARGV[5] the placement's time to live, ms; ARGV[7…] the other workers' ids, as KEYS[3…].
 */
const claim = `
local me, vertex = ARGV[1], ARGV[2]
local mineHere = tonumber(redis.call('HGET', KEYS[2], me .. '|' .. vertex) or '0')
local mineAll = tonumber(redis.call('HGET', KEYS[1], me) or '0')
if ARGV[4] ~= '1' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  for i = 7, #ARGV do
    local id = ARGV[i]
    local beat = redis.call('HMGET', KEYS[i - 4], 'slots', 'lastHeartbeat', 'operators')
    if not beat[1] then
      redis.call('HDEL', KEYS[1], id)
    elseif now - tonumber(beat[2]) <= tonumber(ARGV[3]) and beat[3] == ARGV[6] then
      local all = tonumber(redis.call('HGET', KEYS[1], id) or '0')
      if all < tonumber(beat[1]) then
        local here = tonumber(redis.call('HGET', KEYS[2], id .. '|' .. vertex) or '0')
        if here < mineHere or (here == mineHere and all < mineAll) then return id end
      end
    end
  end
end
redis.call('HINCRBY', KEYS[1], me, 1)
redis.call('HINCRBY', KEYS[2], me .. '|' .. vertex, 1)
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return ''
`;

/** Counts a subtask of worker ARGV[1] and vertex ARGV[2] out (KEYS as `claim`'s first two); a count at 0 goes. */
const release = `
local function down(key, field)
  local n = tonumber(redis.call('HGET', key, field) or '0')
  if n > 1 then redis.call('HINCRBY', key, field, -1) elseif n == 1 then redis.call('HDEL', key, field) end
end
down(KEYS[1], ARGV[1])
down(KEYS[2], ARGV[1] .. '|' .. ARGV[2])
`;

interface PlacementRedis extends Redis {
  placementClaim(numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<string>;
  placementRelease(load: string, placement: string, worker: string, vertex: string): Promise<void>;
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
      // No fixed number of keys: the other workers' heartbeat hashes follow the first two.
      redis.defineCommand('placementClaim', { lua: claim });
      redis.defineCommand('placementRelease', { numberOfKeys: 2, lua: release });
    }
    this.redis = redis as PlacementRedis;
  }

  /** Forgets what a worker of the same name ran before (it died): this one runs nothing yet. */
  async reset(): Promise<void> {
    await this.redis.hdel(this.keys.workerLoad, this.workerId);
  }

  /** Takes the task (undefined), or names the worker it should go to instead; `force` takes it regardless. */
  async claim(task: TaskData, force: boolean): Promise<string | undefined> {
    const others = force ? [] : (await this.redis.smembers(this.keys.workers)).filter((id) => id !== this.workerId);
    const better = await this.redis.placementClaim(
      2 + others.length,
      this.keys.workerLoad,
      this.keys.placement(task.jobId, task.attempt),
      ...others.map((id) => this.keys.worker(id)),
      this.workerId,
      task.vertexId,
      this.liveMs,
      force ? '1' : '0',
      PLACEMENT_TTL_MS,
      this.operators,
      ...others,
    );
    return better || undefined;
  }

  /** The subtask ended: it no longer counts for this worker. */
  async release(task: TaskData): Promise<void> {
    await this.redis.placementRelease(this.keys.workerLoad, this.keys.placement(task.jobId, task.attempt), this.workerId, task.vertexId);
  }
}
