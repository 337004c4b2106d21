import { jobRoom, type ClientToServerEvents, type ServerToClientEvents } from '@keyflow/api';
import type { PrismaClient } from '@keyflow/db';
import type { RedisKeys } from '@keyflow/runtime';
import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { JOBS_ROOM } from './emitter.ts';
import type { JobManager } from '../jobs/jobManager.ts';
import type { MetricsAggregator } from '../observability/metrics.ts';
import type { PrometheusMetrics } from '../observability/prometheus.ts';
import type { RecoveryLog } from '../recovery/recoveryLog.ts';
import type { ScalingCoordinator } from '../rescale/scalingCoordinator.ts';
import { installErrorHandler } from './errors.ts';
import { jobRoutes } from './routes/jobs.ts';
import { pipelineRoutes } from './routes/pipelines.ts';
import { listWorkers } from '../cluster/workers.ts';

export interface ApiDeps {
  prisma: PrismaClient;
  redis: Redis;
  keys: RedisKeys;
  metrics: MetricsAggregator;
  jobs: JobManager;
  scaling: ScalingCoordinator;
  recoveries: RecoveryLog;
  prometheus: PrometheusMetrics;
}

export type SocketServer = Server<ClientToServerEvents, ServerToClientEvents>;

/** The HTTP server with its error handling; routes come with `registerApi` once the job manager exists. */
export function createApp(): FastifyInstance {
  const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'warn' }, bodyLimit: 1024 * 1024 }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandler(app);
  return app;
}

/** Socket.IO on the same HTTP server: every client is in the job-list room and joins job rooms on request. */
export function createSocketServer(app: FastifyInstance): SocketServer {
  const io: SocketServer = new Server(app.server, { path: '/socket.io', cors: { origin: true } });
  io.on('connection', (socket) => {
    void socket.join(JOBS_ROOM);
    socket.on('job:subscribe', (jobId, ack) => {
      if (typeof jobId !== 'string') return ack?.(false);
      void socket.join(jobRoom(jobId));
      ack?.(true);
    });
    socket.on('job:unsubscribe', (jobId) => void socket.leave(jobRoom(jobId)));
  });
  return io;
}

/**
 * The REST API under /api, and for operators: `/metrics` (Prometheus), `/livez` (the process serves requests) and
 * `/readyz` (this control plane holds the lease and coordinates the jobs; 503 while it stands by).
 */
export function registerApi(app: FastifyInstance, deps: ApiDeps): void {
  app.get('/metrics', async (_req, reply) => reply.type(deps.prometheus.contentType).send(await deps.prometheus.scrape()));
  app.get('/livez', async () => ({ live: true }));
  app.get('/readyz', async (_req, reply) =>
    deps.jobs.coordinating
      ? { ready: true, coordinating: true }
      : reply
          .code(503)
          .send({ ready: false, coordinating: false, reason: 'standing by: another control plane holds the lease, or Postgres is out of reach' }),
  );
  void app.register(
    async (api) => {
      api.get('/health', async () => {
        await deps.prisma.$queryRaw`SELECT 1`;
        await deps.redis.ping();
        return { ok: true };
      });
      api.get('/workers', async () => listWorkers(deps.redis, deps.keys));
      await api.register(pipelineRoutes(deps.prisma));
      await api.register(jobRoutes(deps));
    },
    { prefix: '/api' },
  );
}
