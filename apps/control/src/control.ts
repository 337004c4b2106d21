import { createPrisma } from '@keyflow/db';
import { redisKeys, TASK_QUEUE, watchRedis, type TaskData } from '@keyflow/runtime';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { CheckpointCoordinator } from './checkpoints/checkpointCoordinator.ts';
import { Emitter } from './http/emitter.ts';
import type { ControlEnv } from './env.ts';
import { JobManager } from './jobs/jobManager.ts';
import { ControlLease } from './cluster/lease.ts';
import { JobLifecycle } from './jobs/lifecycle.ts';
import { MetricsAggregator } from './observability/metrics.ts';
import { Recoveries } from './recovery/recoveryLog.ts';
import { ScalingCoordinator } from './rescale/scalingCoordinator.ts';
import { Scheduler } from './cluster/scheduler.ts';
import { StallDetector } from './recovery/stallDetector.ts';
import { createApp, createSocketServer, registerApi } from './http/server.ts';
import { consumeWorkerEvents } from './cluster/workerEvents.ts';

export interface ControlHandle {
  url: string;
  jobs: JobManager;
  metrics: MetricsAggregator;
  close(): Promise<void>;
}

/** Starts the control plane: REST API, Socket.IO, job lifecycle and coordinators. */
export async function startControl(env: ControlEnv): Promise<ControlHandle> {
  const keys = redisKeys(env.KEYFLOW_PREFIX);
  const logger = pino({ base: { component: 'control' }, level: process.env.LOG_LEVEL ?? 'info' });
  const log = (msg: string, extra: object = {}) => logger.info(extra, msg);
  const redis = watchRedis(new Redis(env.REDIS_URL, { maxRetriesPerRequest: null }), 'control', logger);
  const prisma = createPrisma(env.DATABASE_URL);

  const app = createApp();
  const io = createSocketServer(app);
  const emitter = new Emitter(io);
  const queue = new Queue<TaskData>(TASK_QUEUE, { connection: watchRedis(redis.duplicate(), 'task queue', logger), prefix: keys.bullPrefix });
  queue.on('error', () => {}); // its connection's errors are logged above
  const scheduler = new Scheduler(queue, redis, keys);
  const metrics = new MetricsAggregator();
  const lifecycle = new JobLifecycle(prisma, emitter);
  const checkpoints = new CheckpointCoordinator(prisma, scheduler, emitter, env.CHECKPOINT_RETENTION);
  const recoveries = new Recoveries(prisma, emitter);
  const stalls = new StallDetector({ warnMs: env.STALL_WARN_MS, timeoutMs: Math.max(env.STALL_TIMEOUT_MS, env.STALL_WARN_MS) });
  const jobs = new JobManager(prisma, redis, keys, lifecycle, scheduler, checkpoints, metrics, emitter, recoveries, stalls, {
    maxRestarts: env.MAX_RESTARTS,
    restartWindowMs: env.RESTART_WINDOW_MS,
    databaseUrl: env.DATABASE_URL,
    keepEndedMs: 24 * 3600_000,
    log,
  });
  const scaling = new ScalingCoordinator(prisma, scheduler, checkpoints, jobs, metrics, emitter, {
    slotTimeoutMs: env.RESCALE_SLOT_TIMEOUT_MS,
    restoreTimeoutMs: env.RESCALE_RESTORE_TIMEOUT_MS,
    log,
  });
  registerApi(app, { prisma, redis, keys, metrics, jobs, scaling, recoveries });

  // Only the control plane that holds the lease coordinates; another stands by, serving reads, until it is free.
  const lease = new ControlLease(env.DATABASE_URL, env.KEYFLOW_PREFIX, log);
  let standingBy = false;
  const lead = async () => {
    const held = await lease.check(jobs.coordinating);
    if (held && !jobs.coordinating) {
      try {
        await jobs.resume();
        // Scaling events queued before (by a control plane that stopped) run now, and jobs converge to what was asked.
        scaling.reconcile(true);
        standingBy = false;
        log('coordinating the jobs');
      } catch (err) {
        jobs.release();
        log('taking up the jobs failed; trying again', { error: (err as Error).message });
      }
    } else if (!held && jobs.coordinating) {
      jobs.release();
      log('another control plane took the lease; standing by');
    } else if (!held && !standingBy) {
      standingBy = true;
      log('another control plane coordinates the jobs; standing by');
    }
  };
  /** Runs `fn` every `ms`, skipping a turn while the last run is still going; a failure is logged and the next turn comes. */
  const every = (ms: number, what: string, fn: () => Promise<unknown>) => {
    let running = false;
    return setInterval(() => {
      if (running) return;
      running = true;
      void fn()
        .catch((err) => log(`${what} failed`, { error: (err as Error).message }))
        .finally(() => (running = false));
    }, ms);
  };
  await lead();
  const leaseTick = every(1000, 'lease check', lead);
  // Each job's events are handled in order on that job's own queue; one job's slow step (a recovery's backoff) holds up no other job.
  const events = consumeWorkerEvents(
    redis,
    keys,
    async (e) => {
      if (e.type === 'rescaled') return scaling.onRescaled(e);
      if (e.type === 'precopied') return scaling.onPrecopied(e.scalingId, e.index);
      void jobs.onEvent(e).catch((err) => log('event handling failed', { type: e.type, error: (err as Error).stack }));
    },
    logger,
    () => stalls.hearing(Date.now()),
  );

  // A task job BullMQ failed: it threw, or its worker died and it stalled.
  const queueEvents = new QueueEvents(TASK_QUEUE, { connection: watchRedis(redis.duplicate(), 'task queue events', logger), prefix: keys.bullPrefix });
  queueEvents.on('error', () => {}); // its connection's errors are logged above
  queueEvents.on('failed', ({ jobId, failedReason }) => {
    const [id, attempt, vertexId, index] = jobId.split('.');
    if (id && attempt && vertexId && index)
      void jobs.onTaskFailed(id, Number(attempt), `${vertexId}#${index}`, failedReason).catch((err) => log('recovery failed', { error: String(err) }));
  });

  const tick = every(100, 'checkpoint tick', () => checkpoints.tick(jobs.active.values()));
  const metricsTick = setInterval(() => jobs.emitMetrics(), 1000);
  const livenessTick = every(250, 'liveness check', async () => {
    await jobs.checkRedis();
    await jobs.checkLiveness(env.HEARTBEAT_TIMEOUT_MS);
    await jobs.checkProgress();
    scaling.reconcile();
  });

  const address = await app.listen({ host: env.CONTROL_HOST, port: env.CONTROL_PORT });
  log('control plane listening', { url: address });

  let closed: Promise<void> | undefined;
  return {
    url: address,
    jobs,
    metrics,
    close: () => (closed ??= shutdown()),
  };

  async function shutdown(): Promise<void> {
    clearInterval(tick);
    clearInterval(metricsTick);
    clearInterval(livenessTick);
    clearInterval(leaseTick);
    await events.stop();
    await queueEvents.close();
    io.close();
    await app.close();
    await queue.close();
    jobs.release();
    redis.disconnect();
    await prisma.$disconnect();
    // Last: another control plane may take over only once this one has stopped acting.
    await lease.release();
  }
}
