import type { WorkerInfo } from '@keyflow/api';
import type { RedisKeys } from '@keyflow/runtime';
import type { Redis } from 'ioredis';

/** Now by Redis's clock (TIME), in ms: the clock heartbeats are stamped with, and judged by. */
export async function redisNow(redis: Redis): Promise<number> {
  const [sec, usec] = await redis.time();
  return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
}

/** The worker pool as the workers' heartbeats describe it; workers whose heartbeat expired drop out. */
export async function listWorkers(redis: Redis, keys: RedisKeys): Promise<WorkerInfo[]> {
  const ids = await redis.smembers(keys.workers);
  const now = await redisNow(redis);
  const out: WorkerInfo[] = [];
  for (const id of ids.sort()) {
    const h = await redis.hgetall(keys.worker(id));
    if (!h.id) {
      await redis.srem(keys.workers, id);
      continue;
    }
    // A heartbeat lists each subtask's task (its parallelism as of its last rescale); the API shows what the UI needs.
    const subtasks = (JSON.parse(h.subtasks ?? '[]') as WorkerInfo['subtasks']).map(
      ({ jobId, attempt, vertexId, index, parallelism, since, cost }) => ({
        jobId,
        attempt,
        vertexId,
        index,
        parallelism,
        since,
        // Milli-cores in the task, cores here.
        ...(cost !== undefined && { cost: cost / 1000 }),
      }),
    );
    out.push({
      id,
      host: h.host ?? '',
      pid: Number(h.pid),
      slots: Number(h.slots),
      usedSlots: subtasks.length,
      ...(h.cpu !== undefined && { cpu: Number(h.cpu) }),
      lastHeartbeat: new Date(Number(h.lastHeartbeat)).toISOString(),
      heartbeatAgeMs: Math.max(0, now - Number(h.lastHeartbeat)),
      subtasks,
      operators: JSON.parse(h.operators ?? '[]') as string[],
    });
  }
  return out;
}
