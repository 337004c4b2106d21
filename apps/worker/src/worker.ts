import { hostname } from 'node:os';
import { createPrisma } from '@keyflow/db';
import { redisKeys, runSubtask, TASK_QUEUE, watchRedis, type RuntimeSettings, type TaskData } from '@keyflow/runtime';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import type { WorkerEnv } from './env.ts';

export interface WorkerHandle {
  id: string;
  close(): Promise<void>;
}

interface Running {
  task: TaskData;
  since: number;
  abort: AbortController;
}

/**
 * A worker process of the pool: a BullMQ Worker on the task queue with `slots` concurrency. A picked task job
 * is the running subtask; it stays active until the subtask ends. Heartbeats list the worker for the UI.
 */
export async function startWorker(env: WorkerEnv, runtime?: Partial<RuntimeSettings>): Promise<WorkerHandle> {
  const keys = redisKeys(env.KEYFLOW_PREFIX);
  const id = env.WORKER_NAME;
  const logger = pino({ base: { worker: id }, level: process.env.LOG_LEVEL ?? 'info' });
  const log = (msg: string, extra: object = {}) => logger.info(extra, msg);
  const redis = watchRedis(new Redis(env.REDIS_URL, { maxRetriesPerRequest: null }), 'worker', log);
  const prisma = createPrisma(env.DATABASE_URL);
  const running = new Map<string, Running>();

  const worker = new Worker<TaskData, string>(
    TASK_QUEUE,
    async (job) => {
      const task = job.data;
      const abort = new AbortController();
      const name = `${task.jobId}/${task.vertexId}#${task.index}@${task.attempt}`;
      running.set(job.id!, { task, since: Date.now(), abort });
      log('subtask started', { subtask: name });
      try {
        const outcome = await runSubtask(task, {
          redis,
          prisma,
          keys,
          workerId: id,
          databaseUrl: env.DATABASE_URL,
          settings: runtime,
          signal: abort.signal,
        });
        log('subtask ended', { subtask: name, outcome });
        return outcome;
      } catch (err) {
        log('subtask failed', { subtask: name, error: (err as Error).stack ?? String(err) });
        throw err;
      } finally {
        running.delete(job.id!);
      }
    },
    {
      connection: watchRedis(redis.duplicate(), 'task queue', log),
      prefix: keys.bullPrefix,
      concurrency: env.WORKER_SLOTS,
      lockDuration: env.WORKER_LOCK_MS,
      stalledInterval: Math.max(1000, Math.floor(env.WORKER_LOCK_MS / 2)),
      // A stalled subtask is not retried by BullMQ: the control plane recovers the whole job from a checkpoint.
      maxStalledCount: 0,
      removeOnComplete: { count: 0 },
      removeOnFail: { count: 1000 },
    },
  );
  worker.on('error', (err) => log('queue error', { error: err.message }));

  const beat = async () => {
    const key = keys.worker(id);
    const subtasks = [...running.values()].map((r) => ({ ...r.task, since: r.since }));
    await redis
      .multi()
      .hset(key, {
        id,
        host: hostname(),
        pid: String(process.pid),
        slots: String(env.WORKER_SLOTS),
        subtasks: JSON.stringify(subtasks),
        lastHeartbeat: String(Date.now()),
      })
      .pexpire(key, Math.max(5000, 4 * env.WORKER_HEARTBEAT_MS))
      .sadd(keys.workers, id)
      .exec();
  };
  await beat();
  const timer = setInterval(() => void beat().catch((err) => log('heartbeat failed', { error: err.message })), env.WORKER_HEARTBEAT_MS);
  log('worker started', { slots: env.WORKER_SLOTS, pid: process.pid });

  return {
    id,
    async close() {
      clearInterval(timer);
      for (const r of running.values()) r.abort.abort();
      await worker.close();
      await redis.multi().del(keys.worker(id)).srem(keys.workers, id).exec().catch(() => {});
      redis.disconnect();
      await prisma.$disconnect();
    },
  };
}
