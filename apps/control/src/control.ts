import { createPrisma, sinkDatabaseUrlOf } from '@keyflow/db';
import { loadOperators, redisKeys, TASK_QUEUE, watchRedis, type TaskData } from '@keyflow/runtime';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { pino, type DestinationStream } from 'pino';
import { CheckpointCoordinator } from './checkpoints/checkpointCoordinator.ts';
import { ControlLease } from './cluster/lease.ts';
import { Scheduler } from './cluster/scheduler.ts';
import { listWorkers } from './cluster/workers.ts';
import { consumeWorkerEvents } from './cluster/workerEvents.ts';
import type { ControlEnv } from './env.ts';
import { Emitter } from './http/emitter.ts';
import { createApp, createSocketServer, LOG_REDACT, registerApi, routesOf, userRoom, type RouteInfo } from './http/server.ts';
import { Connections } from './connections/connections.ts';
import { Accounts } from './auth/accounts.ts';
import { AuditLog } from './auth/audit.ts';
import { createAuth } from './auth/auth.ts';
import { firstAdmin } from './auth/firstAdmin.ts';
import { JobLifecycle } from './jobs/lifecycle.ts';
import { JobManager } from './jobs/jobManager.ts';
import { MetricsAggregator } from './observability/metrics.ts';
import { PrometheusMetrics } from './observability/prometheus.ts';
import { FailureDetector } from './recovery/failureDetector.ts';
import { RecoveryCoordinator } from './recovery/recoveryCoordinator.ts';
import { RecoveryLog } from './recovery/recoveryLog.ts';
import { RedisEpoch } from './recovery/redisEpoch.ts';
import { StallDetector } from './recovery/stallDetector.ts';
import { ScalingCoordinator } from './rescale/scalingCoordinator.ts';

export interface ControlHandle {
  url: string;
  /** Users and API keys (the tests make their own admin and key through it). */
  accounts: Accounts;
  /** Every HTTP route, with the role it asked for. */
  routes: readonly RouteInfo[];
  jobs: JobManager;
  metrics: MetricsAggregator;
  close(): Promise<void>;
}

/** How long an ended job's samples and dead letters stay readable. */
const KEEP_ENDED_MS = 24 * 3600_000;

/**
 * The dashboard's origin, and when it is on this machine also its other loopback spellings (a browser opened at
 * localhost:3000 sends that origin, not 127.0.0.1:3000).
 */
export function loopbackSpellings(origin: string): string[] {
  const url = new URL(origin);
  const loopback = ['127.0.0.1', 'localhost', '[::1]'];
  if (!loopback.includes(url.hostname)) return [url.origin];
  return loopback.map((host) => `${url.protocol}//${host}${url.port ? `:${url.port}` : ''}`);
}

/** Starts the control plane: REST API, Socket.IO, job lifecycle and coordinators. */
export async function startControl(env: ControlEnv, opts: { logStream?: DestinationStream } = {}): Promise<ControlHandle> {
  const keys = redisKeys(env.KEYFLOW_PREFIX);
  const logger = pino({ base: { service: 'control' }, level: env.LOG_LEVEL, redact: LOG_REDACT }, opts.logStream);
  const redis = watchRedis(new Redis(env.REDIS_URL, { maxRetriesPerRequest: null }), 'control', logger);
  const prisma = createPrisma(env.DATABASE_URL);
  const sinkDatabaseUrl = sinkDatabaseUrlOf(env, (message) => logger.warn(message));
  // The same catalog as the workers': validation, the dashboard's palette and a job's recorded versions read it.
  const operators = await loadOperators(env.KEYFLOW_OPERATORS);
  if (operators.length) logger.info({ operators: operators.map((o) => o.version) }, 'user operators loaded');
  const quotas = {
    maxSubtasksPerJob: env.KEYFLOW_MAX_SUBTASKS_PER_JOB,
    maxParallelism: env.KEYFLOW_MAX_PARALLELISM,
    maxGeneratorKeys: env.KEYFLOW_MAX_GENERATOR_KEYS,
  };

  const allowedOrigins = env.KEYFLOW_ALLOWED_ORIGINS ?? loopbackSpellings(env.KEYFLOW_DASHBOARD_URL);
  const auth = createAuth(prisma, {
    secret: env.KEYFLOW_AUTH_SECRET,
    baseURL: env.KEYFLOW_DASHBOARD_URL,
    trustedOrigins: allowedOrigins,
    signInPerMinute: env.KEYFLOW_SIGNIN_PER_MINUTE,
    logger,
  });
  const audit = new AuditLog(prisma, logger.child({ component: 'audit' }));
  // Declared below: a deleted user's open sockets are closed.
  const accounts = new Accounts(prisma, auth, audit, (userId) => io.in(userRoom(userId)).disconnectSockets(true));
  if (!env.KEYFLOW_SECRET_KEY)
    logger.warn({}, 'KEYFLOW_SECRET_KEY is not set: connections with a password, token or secret header cannot be stored or used');
  const connections = new Connections(prisma, audit, env.KEYFLOW_SECRET_KEY);
  const app = createApp({ logLevel: env.LOG_LEVEL, trustProxy: env.KEYFLOW_TRUSTED_PROXIES, ...(opts.logStream && { logStream: opts.logStream }) });
  const io = createSocketServer(app, { accounts, allowedOrigins, prisma });
  const metrics = new MetricsAggregator();
  // Read at scrape time, once the job manager below exists.
  const prometheus = new PrometheusMetrics({
    activeJobs: () => [...jobs.active.values()].map((j) => ({ id: j.id, state: j.state, stalled: j.stall !== undefined, ownClock: j.ownClock })),
    coordinating: () => jobs.coordinating,
    workers: () => listWorkers(redis, keys),
    metrics,
  });
  const emitter = new Emitter(io, (event, payload) => prometheus.onEvent(event, payload));
  const queue = new Queue<TaskData>(TASK_QUEUE, { connection: watchRedis(redis.duplicate(), 'task queue', logger), prefix: keys.bullPrefix });
  queue.on('error', () => {}); // its connection's errors are logged above
  const scheduler = new Scheduler(queue, redis, keys);
  const lifecycle = new JobLifecycle(prisma, emitter, logger.child({ component: 'lifecycle' }));
  const checkpoints = new CheckpointCoordinator(prisma, scheduler, emitter, env.CHECKPOINT_RETENTION, logger.child({ component: 'checkpoints' }));
  const recoveryLog = new RecoveryLog(prisma, emitter);
  const stalls = new StallDetector({
    warnMs: env.STALL_WARN_MS,
    timeoutMs: Math.max(env.STALL_TIMEOUT_MS, env.STALL_WARN_MS),
    startWarnMs: env.START_WARN_MS,
    startTimeoutMs: Math.max(env.START_TIMEOUT_MS, env.START_WARN_MS),
  });
  const jobs = new JobManager(prisma, redis, keys, lifecycle, scheduler, checkpoints, metrics, emitter, logger.child({ component: 'jobs' }), {
    sinkDatabaseUrl,
    connections,
    quotas,
    keepEndedMs: KEEP_ENDED_MS,
  });
  const recoveryLogger = logger.child({ component: 'recovery' });
  // The recovery coordinator and the failure detector (declared below) need each other only through a callback.
  const recovery = new RecoveryCoordinator(
    prisma,
    jobs,
    scheduler,
    checkpoints,
    metrics,
    recoveryLog,
    recoveryLogger,
    { maxRestarts: env.MAX_RESTARTS, restartWindowMs: env.RESTART_WINDOW_MS },
    (job) => failures.forget(job, false),
  );
  const failures = new FailureDetector(redis, keys, jobs, recovery, stalls, emitter, recoveryLogger);
  const epoch = new RedisEpoch(redis, keys, jobs, recovery, recoveryLogger);
  const scaling = new ScalingCoordinator(prisma, scheduler, checkpoints, jobs, recovery, metrics, emitter, logger.child({ component: 'rescale' }), {
    slotTimeoutMs: env.RESCALE_SLOT_TIMEOUT_MS,
    restoreTimeoutMs: env.RESCALE_RESTORE_TIMEOUT_MS,
    quotas,
  });
  jobs.use({
    recover: (job, cause, failedAt) => recovery.recover(job, cause, failedAt),
    recovered: (job) => recovery.recovered(job),
    rescale: (_job, e) => scaling.onWorkerEvent(e),
    ended: (job) => failures.forget(job, true),
  });
  registerApi(app, {
    prisma,
    redis,
    keys,
    metrics,
    jobs,
    scaling,
    recoveries: recoveryLog,
    prometheus,
    auth,
    accounts,
    audit,
    connections,
    dashboardUrl: env.KEYFLOW_DASHBOARD_URL,
    allowedOrigins,
    signInPerMinute: env.KEYFLOW_SIGNIN_PER_MINUTE,
    ingestLimits: { maxBytes: env.KEYFLOW_INGEST_MAX_BYTES, maxRecords: env.KEYFLOW_INGEST_MAX_RECORDS },
  });
  await firstAdmin(accounts, env, logger, { generate: false });

  // Only the control plane that holds the lease coordinates; another stands by, serving reads, until it is free.
  const leaseLogger = logger.child({ component: 'lease' });
  const lease = new ControlLease(env.DATABASE_URL, env.KEYFLOW_PREFIX, leaseLogger, () => {
    // The lease's connection broke: another control plane may hold the lock by now, so this one stops at once.
    if (!jobs.coordinating) return;
    jobs.release();
    leaseLogger.warn({}, 'lost the lease (its Postgres connection broke); standing by');
  });
  let standingBy = false;
  const lead = async () => {
    const held = await lease.check(jobs.coordinating);
    if (held && !jobs.coordinating) {
      try {
        await epoch.take();
        await jobs.resume();
        // Scaling events queued before (by a control plane that stopped) run now, and jobs converge to what was asked.
        scaling.reconcile(true);
        standingBy = false;
        leaseLogger.info({ jobs: jobs.active.size }, 'coordinating the jobs');
      } catch (err) {
        jobs.release();
        leaseLogger.warn({ error: (err as Error).message }, 'taking up the jobs failed; trying again');
      }
    } else if (!held && jobs.coordinating) {
      jobs.release();
      leaseLogger.warn({}, 'another control plane took the lease; standing by');
    } else if (!held && !standingBy) {
      standingBy = true;
      leaseLogger.info({}, 'another control plane coordinates the jobs (or Postgres is out of reach); standing by');
    }
  };
  /** Runs `fn` every `ms`, skipping a turn while the last run is still going; a failure is logged and the next turn comes. */
  const every = (ms: number, what: string, fn: () => Promise<unknown> | void) => {
    let running = false;
    return setInterval(() => {
      if (running) return;
      running = true;
      void Promise.resolve()
        .then(fn)
        .catch((err) => logger.warn({ error: (err as Error).message }, `${what} failed`))
        .finally(() => (running = false));
    }, ms);
  };
  // Listening before taking the jobs up: the events of attempts a takeover starts (a subtask failing at once) are
  // not missed (the stream is read from its end as of now).
  const events = consumeWorkerEvents(
    redis,
    keys,
    async (e) => {
      if (e.type === 'metrics') {
        failures.onMetrics(e);
        prometheus.onWorkerMetrics(e);
      }
      // Each job's events are steps of its own actor: one job's slow step (a recovery's backoff) holds up no other job.
      void jobs
        .onEvent(e)
        .catch((err) => logger.error({ type: e.type, jobId: e.jobId, error: (err as Error).stack }, 'handling a worker event failed'));
    },
    logger.child({ component: 'events' }),
    () => failures.hearing(Date.now()),
  );

  // A task job BullMQ failed: it threw, or its worker died and it stalled.
  const queueEvents = new QueueEvents(TASK_QUEUE, {
    connection: watchRedis(redis.duplicate(), 'task queue events', logger),
    prefix: keys.bullPrefix,
  });
  queueEvents.on('error', () => {}); // its connection's errors are logged above
  queueEvents.on('failed', ({ jobId, failedReason }) => {
    const [id, attempt, vertexId, index] = jobId.split('.');
    if (id && attempt && vertexId && index)
      void failures
        .onTaskFailed(id, Number(attempt), `${vertexId}#${index}`, failedReason)
        .catch((err) => recoveryLogger.error({ jobId: id, error: String(err) }, 'recovery failed'));
  });

  await lead();
  const leaseTick = every(1000, 'lease check', lead);

  const tick = every(100, 'checkpoint tick', () => checkpoints.tick(jobs.active.values()));
  const metricsTick = setInterval(() => jobs.emitMetrics(), 1000);
  const livenessTick = every(250, 'liveness check', async () => {
    await epoch.check();
    jobs.retryTransitions();
    await failures.checkLiveness(env.HEARTBEAT_TIMEOUT_MS);
    await failures.checkProgress();
    scaling.reconcile();
  });

  const address = await app.listen({ host: env.CONTROL_HOST, port: env.CONTROL_PORT });
  logger.info({ url: address }, 'control plane listening');

  let closed: Promise<void> | undefined;
  return {
    url: address,
    accounts,
    routes: routesOf(app),
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
    // Its promise settles with the HTTP server, which the app closes next.
    void io.close();
    await app.close();
    await queue.close();
    jobs.release();
    redis.disconnect();
    await prisma.$disconnect();
    // Last: another control plane may take over only once this one has stopped acting.
    await lease.release();
  }
}
