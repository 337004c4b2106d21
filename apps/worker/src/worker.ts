import { hostname } from 'node:os';
import { createPrisma, loadConnection, sinkDatabaseUrlOf } from '@keyflow/db';
import {
  CheckpointStorage,
  loadOperators,
  redisKeys,
  runSubtask,
  TASK_QUEUE,
  taskDataSchema,
  watchRedis,
  type RuntimeSettings,
  type TaskData,
} from '@keyflow/runtime';
import { DelayedError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import type { WorkerEnv } from './env.ts';
import { Heartbeat } from './heartbeat.ts';
import { Placement } from './placement.ts';

export interface WorkerHandle {
  id: string;
  close(): Promise<void>;
}

/** How long a task handed back to the queue for a worker that runs less waits before anyone may take it. */
const DEFER_MS = 50;
/** How often a task is handed back before whoever picks it takes it (the worker it went back for may not ask). */
const MAX_DEFERRALS = 10;

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
  const logger = pino({ base: { worker: id }, level: env.LOG_LEVEL });
  const redis = watchRedis(new Redis(env.REDIS_URL, { maxRetriesPerRequest: null }), 'worker', logger);
  const prisma = createPrisma(env.DATABASE_URL);
  const checkpoints = new CheckpointStorage(env.DATABASE_URL);
  const sinkDatabaseUrl = sinkDatabaseUrlOf(env, (message) => logger.warn(message));
  const operators = await loadOperators(env.KEYFLOW_OPERATORS);
  if (operators.length) logger.info({ operators: operators.map((o) => o.version) }, 'user operators loaded');
  const running = new Map<string, Running>();
  let reportSubtasks = () => {};
  // Another worker counts as live for placement while its heartbeat is at most three beats old.
  const operatorVersions = JSON.stringify(operators.map((o) => o.version));
  const placement = new Placement(redis, keys, id, 3 * env.WORKER_HEARTBEAT_MS, operatorVersions);
  await placement.reset();

  const worker = new Worker<unknown, string>(
    TASK_QUEUE,
    async (job, token) => {
      const parsed = taskDataSchema.safeParse(job.data);
      if (!parsed.success) {
        // Only this task job fails (BullMQ records why); the worker goes on with the others.
        const issue = parsed.error.issues[0];
        const reason = `malformed task data: ${issue?.path.join('.') || 'task'}: ${issue?.message ?? 'invalid'}`;
        logger.error({ taskJob: job.id, reason }, 'task rejected');
        throw new Error(reason);
      }
      // The one object the heartbeat lists: a live rescale updates its parallelism in place.
      const task = parsed.data;
      const subtaskLog = logger.child({ jobId: task.jobId, vertex: task.vertexId, subtask: task.index, attempt: task.attempt });
      // BullMQ counts every time a worker picked the task, handed back ones included.
      const better = await placement.claim(task, job.attemptsStarted > MAX_DEFERRALS);
      if (better) {
        subtaskLog.debug({ to: better }, 'task handed back for a worker that runs less');
        await job.moveToDelayed(Date.now() + DEFER_MS, token);
        throw new DelayedError();
      }
      const abort = new AbortController();
      running.set(job.id!, { task, since: Date.now(), abort });
      reportSubtasks();
      subtaskLog.info('subtask started');
      try {
        const outcome = await runSubtask(task, {
          redis,
          prisma,
          checkpoints,
          keys,
          workerId: id,
          databaseUrl: sinkDatabaseUrl,
          settings: runtime,
          signal: abort.signal,
          logger: subtaskLog,
          // The heartbeat lists each subtask's parallelism: a live rescale changes it.
          onRescaled: () => reportSubtasks(),
          // Connectors' connection profiles, secrets opened with the control plane's KEYFLOW_SECRET_KEY.
          connection: (name) => loadConnection(prisma, name, env.KEYFLOW_SECRET_KEY),
        });
        subtaskLog.info({ outcome }, 'subtask ended');
        return outcome;
      } catch (err) {
        subtaskLog.error({ error: (err as Error).stack ?? String(err) }, 'subtask failed');
        throw err;
      } finally {
        running.delete(job.id!);
        reportSubtasks();
        await placement.release(task).catch((err: Error) => subtaskLog.warn({ error: err.message }, 'placement not released'));
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
  // BullMQ goes on after these (it reconnects, a task job it lost is the control plane's to recover): warn.
  worker.on('error', (err) => logger.warn({ error: err.message }, 'task queue error'));

  // Beaten from a thread of its own; it says which subtasks run whenever that changes.
  const heartbeat = new Heartbeat(
    {
      redisUrl: env.REDIS_URL,
      key: keys.worker(id),
      workersKey: keys.workers,
      fields: {
        id,
        host: hostname(),
        pid: String(process.pid),
        slots: String(env.WORKER_SLOTS),
        operators: operatorVersions,
      },
      intervalMs: env.WORKER_HEARTBEAT_MS,
      stuckMs: env.WORKER_STUCK_MS,
    },
    (error) => logger.warn({ error }, 'heartbeat failed'),
  );
  const current = () => [...running.values()].map((r) => ({ ...r.task, since: r.since }));
  reportSubtasks = () => void heartbeat.report(current());
  // Listed before the log says it started (subtasks it may have picked already included).
  await heartbeat.report(current());
  logger.info({ slots: env.WORKER_SLOTS, pid: process.pid }, 'worker started');

  return {
    id,
    async close() {
      await heartbeat.stop();
      for (const r of running.values()) r.abort.abort();
      await worker.close();
      await redis
        .multi()
        .del(keys.worker(id))
        .srem(keys.workers, id)
        .hdel(keys.workerLoad, id)
        .exec()
        .catch(() => {});
      redis.disconnect();
      await prisma.$disconnect();
      await checkpoints.close().catch(() => {});
    },
  };
}
