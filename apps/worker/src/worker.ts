import { hostname } from 'node:os';
import { createPrisma } from '@keyflow/db';
import { redisKeys, runSubtask, TASK_QUEUE, watchRedis, type RuntimeSettings, type TaskData } from '@keyflow/runtime';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import type { WorkerEnv } from './env.ts';
import { Heartbeat } from './heartbeat.ts';

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
  const redis = watchRedis(new Redis(env.REDIS_URL, { maxRetriesPerRequest: null }), 'worker', logger);
  const prisma = createPrisma(env.DATABASE_URL);
  const running = new Map<string, Running>();
  let reportSubtasks = () => {};

  const worker = new Worker<TaskData, string>(
    TASK_QUEUE,
    async (job) => {
      const task = job.data;
      const abort = new AbortController();
      const name = `${task.jobId}/${task.vertexId}#${task.index}@${task.attempt}`;
      running.set(job.id!, { task, since: Date.now(), abort });
      reportSubtasks();
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
          logger: logger.child({ subtask: name }),
          // The heartbeat lists each subtask's parallelism: a live rescale changes it.
          onRescaled: () => reportSubtasks(),
        });
        log('subtask ended', { subtask: name, outcome });
        return outcome;
      } catch (err) {
        log('subtask failed', { subtask: name, error: (err as Error).stack ?? String(err) });
        throw err;
      } finally {
        running.delete(job.id!);
        reportSubtasks();
      }
    },
    {
      connection: watchRedis(redis.duplicate(), 'task queue', logger),
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

  // Beaten from a thread of its own; it says which subtasks run whenever that changes.
  const heartbeat = new Heartbeat(
    {
      redisUrl: env.REDIS_URL,
      key: keys.worker(id),
      workersKey: keys.workers,
      fields: { id, host: hostname(), pid: String(process.pid), slots: String(env.WORKER_SLOTS) },
      intervalMs: env.WORKER_HEARTBEAT_MS,
      stuckMs: env.WORKER_STUCK_MS,
    },
    (error) => log('heartbeat failed', { error }),
  );
  const current = () => [...running.values()].map((r) => ({ ...r.task, since: r.since }));
  reportSubtasks = () => void heartbeat.report(current());
  // Listed before the log says it started (subtasks it may have picked already included).
  await heartbeat.report(current());
  log('worker started', { slots: env.WORKER_SLOTS, pid: process.pid });

  return {
    id,
    async close() {
      await heartbeat.stop();
      for (const r of running.values()) r.abort.abort();
      await worker.close();
      await redis.multi().del(keys.worker(id)).srem(keys.workers, id).exec().catch(() => {});
      redis.disconnect();
      await prisma.$disconnect();
    },
  };
}
