import { jobRoom, type ClientToServerEvents, type ServerToClientEvents } from '@keyflow/api';
import type { PrismaClient } from '@keyflow/db';
import type { RedisKeys } from '@keyflow/runtime';
import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import type { DestinationStream } from 'pino';
import { Server } from 'socket.io';
import { JOBS_ROOM } from './emitter.ts';
import type { JobManager } from '../jobs/jobManager.ts';
import type { MetricsAggregator } from '../observability/metrics.ts';
import type { PrometheusMetrics } from '../observability/prometheus.ts';
import type { RecoveryLog } from '../recovery/recoveryLog.ts';
import type { ScalingCoordinator } from '../rescale/scalingCoordinator.ts';
import { installErrorHandler } from './errors.ts';
import { Refused } from '../jobs/refusal.ts';
import { jobRoutes } from './routes/jobs.ts';
import { pipelineRoutes } from './routes/pipelines.ts';
import { listWorkers } from '../cluster/workers.ts';
import type { Accounts, Principal } from '../auth/accounts.ts';
import type { Auth } from '../auth/auth.ts';
import type { AuditLog } from '../auth/audit.ts';
import { installGuard } from './guard.ts';
import { accountRoutes } from './routes/accounts.ts';
import { authHandlerRoutes } from './routes/authHandler.ts';
import { ingestRoutes } from './routes/ingest.ts';
import { connectionRoutes } from './routes/connections.ts';
import { operatorRoutes } from './routes/operators.ts';
import type { Connections } from '../connections/connections.ts';

export interface ApiDeps {
  prisma: PrismaClient;
  redis: Redis;
  keys: RedisKeys;
  metrics: MetricsAggregator;
  jobs: JobManager;
  scaling: ScalingCoordinator;
  recoveries: RecoveryLog;
  prometheus: PrometheusMetrics;
  auth: Auth;
  accounts: Accounts;
  audit: AuditLog;
  connections: Connections;
  /** Sign-in attempts per client address, and per account, per minute. */
  signInPerMinute: number;
  /** The largest ingest request: its body's bytes (KEYFLOW_INGEST_MAX_BYTES) and records (KEYFLOW_INGEST_MAX_RECORDS). */
  ingestLimits: { maxBytes: number; maxRecords: number };
  /** The dashboard's origin: where the browser reaches `/api`. */
  dashboardUrl: string;
  allowedOrigins: readonly string[];
}

/** A route as registered, with the role it asked for (none: viewer for reads, operator for changes). */
export interface RouteInfo {
  method: string;
  url: string;
  role: string | undefined;
}
const routeTables = new WeakMap<FastifyInstance, RouteInfo[]>();
/** Every route the app registered: the tests check each one's guard against their own table. */
export const routesOf = (app: FastifyInstance): readonly RouteInfo[] => routeTables.get(app) ?? [];

export type SocketServer = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, { principal: Principal }>;

/**
 * What no log line shows, should a request's headers or body ever be logged (Fastify logs neither by default):
 * credentials, and the secrets of connections and users.
 */
export const LOG_REDACT = {
  paths: [
    'req.headers.authorization',
    'req.headers.cookie',
    ...['password', 'token', 'secretHeaders'].flatMap((secret) => [`req.body.${secret}`, `body.${secret}`, secret]),
  ],
  censor: '[redacted]',
};

/**
 * The HTTP server with its error handling; routes come with `registerApi` once the job manager exists.
 * `trustProxy` names the proxies (the dashboard's server) whose X-Forwarded-For gives the client's address.
 */
export function createApp(opts: { logLevel: string; trustProxy: string; logStream?: DestinationStream }): FastifyInstance {
  const app = Fastify({
    logger: { level: opts.logLevel, redact: LOG_REDACT, ...(opts.logStream && { stream: opts.logStream }) },
    bodyLimit: 1024 * 1024,
    trustProxy: opts.trustProxy,
  }).withTypeProvider<ZodTypeProvider>();
  const routes: RouteInfo[] = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) if (method !== 'HEAD') routes.push({ method, url: r.url, role: r.config?.role });
  });
  routeTables.set(app, routes);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandler(app);
  return app;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Socket.IO on the same HTTP server. A browser's connection must come from an allowed origin (a WebSocket is not
 * bound by CORS, so the origin is checked on every handshake); the handshake is authenticated like a request (the
 * session cookie, or an API key as `auth.token`). Every client is in the job-list room and joins a job's room on
 * request, once the job is known to exist: every role may read every job (there are no per-pipeline permissions).
 */
export function createSocketServer(
  app: FastifyInstance,
  deps: { accounts: Accounts; allowedOrigins: readonly string[]; prisma: PrismaClient },
): SocketServer {
  const io: SocketServer = new Server(app.server, {
    path: '/socket.io',
    cors: { origin: [...deps.allowedOrigins], credentials: true },
    allowRequest: (req, callback) => {
      const origin = req.headers.origin;
      callback(origin && !deps.allowedOrigins.includes(origin) ? 'origin not allowed' : null, !origin || deps.allowedOrigins.includes(origin));
    },
  });
  io.use((socket, next) => {
    const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
    const headers = typeof token === 'string' ? { authorization: `Bearer ${token}` } : { cookie: socket.handshake.headers.cookie };
    deps.accounts
      .resolve(headers)
      .then((principal) => {
        if (!principal) return next(new Error('unauthorized'));
        socket.data.principal = principal;
        next();
      })
      .catch(() => next(new Error('unauthorized')));
  });
  io.on('connection', (socket) => {
    void socket.join(JOBS_ROOM);
    void socket.join(userRoom(socket.data.principal.userId));
    socket.on('job:subscribe', (jobId, ack) => {
      if (typeof jobId !== 'string' || !UUID.test(jobId)) return ack?.(false);
      void deps.prisma.job
        .count({ where: { id: jobId } })
        .then((n) => {
          if (!n) return ack?.(false);
          void socket.join(jobRoom(jobId));
          ack?.(true);
        })
        .catch(() => ack?.(false));
    });
    socket.on('job:unsubscribe', (jobId) => void socket.leave(jobRoom(jobId)));
  });
  return io;
}

/** The room of one user's connections: closed when the user is deleted or their password reset. */
export const userRoom = (userId: string) => `user:${userId}`;

/**
 * The REST API under /api, and for operators: `/metrics` (Prometheus), `/livez` (the process serves requests) and
 * `/readyz` (this control plane holds the lease and coordinates the jobs; 503 while it stands by).
 */
export function registerApi(app: FastifyInstance, deps: ApiDeps): void {
  installGuard(app, deps.accounts, deps.allowedOrigins);
  const open = { config: { role: 'open' } } as const;
  // Prometheus scrapes with an API key (`authorization: { credentials: … }` in its scrape config).
  app.get('/metrics', async (_req, reply) => reply.type(deps.prometheus.contentType).send(await deps.prometheus.scrape()));
  app.get('/livez', open, async () => ({ live: true }));
  app.get('/readyz', open, async (_req, reply) =>
    deps.jobs.coordinating
      ? { ready: true, coordinating: true }
      : reply
          .code(503)
          .send({ ready: false, coordinating: false, reason: 'standing by: another control plane holds the lease, or Postgres is out of reach' }),
  );
  void app.register(
    async (api) => {
      // Open, and says nothing private: whether the control plane reaches its database and Redis.
      api.get('/health', open, async () => {
        await deps.prisma.$queryRaw`SELECT 1`;
        await deps.redis.ping();
        return { ok: true };
      });
      await api.register(
        authHandlerRoutes(deps.auth, deps.dashboardUrl, { redis: deps.redis, key: deps.keys.signIn, perMinute: deps.signInPerMinute }),
      );
      await api.register(accountRoutes(deps.accounts, deps.audit));
      api.get('/workers', async () => listWorkers(deps.redis, deps.keys));
      await api.register(operatorRoutes());
      await api.register(pipelineRoutes(deps.prisma, deps.audit, deps.connections));
      await api.register(connectionRoutes(deps.connections));
      await api.register(jobRoutes(deps));
      await api.register(ingestRoutes({ redis: deps.redis, keys: deps.keys, jobs: deps.jobs, ...deps.ingestLimits }));
      // Unknown routes under /api answer 401 before 404: without credentials nothing is told about what exists.
      api.setNotFoundHandler(async (req) => {
        if (!(await deps.accounts.resolve(req.headers).catch(() => null))) throw new Refused('unauthorized', 'sign in, or send an API key');
        throw new Refused('not-found', `no route ${req.method} ${req.url}`);
      });
    },
    { prefix: '/api' },
  );
}
