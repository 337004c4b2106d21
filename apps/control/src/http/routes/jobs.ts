import {
  checkpointIdParams,
  deployJobBody,
  idParams,
  type KeyGroupView,
  listJobsQuery,
  rescaleJobBody,
  sampleParams,
  type Job as JobDto,
  type JobDetail,
} from '@keyflow/api';
import { operatorSpec, rangeFor, sinkDelivery, validateGraph, type JobPlan } from '@keyflow/core';
import type { Job, Pipeline, PipelineVersion, PrismaClient } from '@keyflow/db';
import type { RedisKeys } from '@keyflow/runtime';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import { borrowedCheckpoints } from '../../checkpoints/borrowed.ts';
import { checkpointDto, checkpointFailures } from '../../checkpoints/checkpointCoordinator.ts';
import { desiredOf, type ActiveJob } from '../../jobs/activeJob.ts';
import type { JobManager } from '../../jobs/jobManager.ts';
import { Refused } from '../../jobs/refusal.ts';
import type { MetricsAggregator } from '../../observability/metrics.ts';
import type { RecoveryLog } from '../../recovery/recoveryLog.ts';
import { scalingDto, type ScalingCoordinator } from '../../rescale/scalingCoordinator.ts';
import type { AuditLog } from '../../auth/audit.ts';
import { principalOf } from '../guard.ts';

type JobRow = Job & { pipeline: Pipeline; pipelineVersion: PipelineVersion };

/** A job as the API shows it; `active` is what the control plane holds of it while it coordinates it. */
function jobDto(j: JobRow, active: ActiveJob | undefined): JobDto {
  const plan = (active?.plan ?? j.plan) as JobPlan;
  return {
    id: j.id,
    pipelineId: j.pipelineId,
    pipelineName: j.pipeline.name,
    version: j.pipelineVersion.version,
    state: j.state,
    attempt: j.attempt,
    plan: {
      vertices: Object.fromEntries(
        Object.entries(plan.vertices).map(([id, v]) => [id, { parallelism: v.parallelism, maxParallelism: v.maxParallelism }]),
      ),
    },
    desiredParallelism: active?.desired ?? desiredOf(j.desiredParallelism, plan),
    stall: active?.stall ?? null,
    checkpointIntervalMs: j.checkpointIntervalMs,
    tolerableCheckpointFailures: j.tolerableCheckpointFailures,
    restoredFromId: j.restoredFromId,
    restoredFrom: j.restoredFromJobId !== null && j.restoredFromNumber !== null ? { jobId: j.restoredFromJobId, number: j.restoredFromNumber } : null,
    failureReason: j.failureReason,
    createdAt: j.createdAt.toISOString(),
    updatedAt: j.updatedAt.toISOString(),
    endedAt: j.endedAt?.toISOString() ?? null,
  };
}

export function jobRoutes(deps: {
  prisma: PrismaClient;
  redis: Redis;
  keys: RedisKeys;
  jobs: JobManager;
  metrics: MetricsAggregator;
  scaling: ScalingCoordinator;
  recoveries: RecoveryLog;
  audit: AuditLog;
}): FastifyPluginAsyncZod {
  const { prisma, redis, keys, jobs, metrics, scaling, recoveries, audit } = deps;
  const include = { pipeline: true, pipelineVersion: true } as const;
  const byId = async (id: string) => {
    const j = await prisma.job.findUnique({ where: { id }, include });
    if (!j) throw new Refused('not-found', `no job ${id}`);
    return j;
  };
  const acked = (rows: { _count: { acks: number } }) => rows._count.acks;

  return async (app) => {
    app.get('/jobs', { schema: { querystring: listJobsQuery } }, async (req) => {
      const rows = await prisma.job.findMany({
        where: { ...(req.query.pipelineId && { pipelineId: req.query.pipelineId }), ...(req.query.state && { state: req.query.state }) },
        orderBy: { createdAt: 'desc' },
        take: 200,
        include,
      });
      return rows.map((j) => jobDto(j, jobs.active.get(j.id)));
    });

    app.post('/jobs', { schema: { body: deployJobBody } }, async (req, reply) => {
      const job = await jobs.deploy(req.body);
      await audit.record(principalOf(req), {
        action: 'job.deploy',
        jobId: job.id,
        pipelineId: job.pipelineId,
        details: {
          ...(req.body.version !== undefined && { version: req.body.version }),
          ...(req.body.restoreFromCheckpointId !== undefined && { restoreFromCheckpointId: req.body.restoreFromCheckpointId }),
          // The checkpoint as the dashboard lists it: its number within its job (the id above is the database's).
          ...(job.restoredFromJobId !== null && { fromCheckpoint: { jobId: job.restoredFromJobId, number: job.restoredFromNumber } }),
          ...(req.body.parallelism !== undefined && { parallelism: req.body.parallelism }),
        },
      });
      reply.code(201);
      return jobDto(await byId(job.id), jobs.active.get(job.id));
    });

    app.get('/jobs/:id', { schema: { params: idParams } }, async (req): Promise<JobDetail> => {
      const j = await byId(req.params.id);
      const [events, checkpoints, byStatus, auditTrail] = await Promise.all([
        prisma.jobEvent.findMany({ where: { jobId: j.id }, orderBy: { id: 'asc' }, take: 500 }),
        prisma.checkpoint.findMany({
          where: { jobId: j.id },
          orderBy: { number: 'desc' },
          take: 10,
          include: { _count: { select: { acks: true } } },
        }),
        prisma.checkpoint.groupBy({ by: ['status'], where: { jobId: j.id }, _count: { _all: true } }),
        audit.forJob(j.id),
      ]);
      const counted = (status: string) => byStatus.find((b) => b.status === status)?._count._all ?? 0;
      const graph = validateGraph(j.pipelineVersion.graph);
      const active = jobs.active.get(j.id);
      const sinkGuarantees: JobDetail['sinkGuarantees'] = {};
      if (graph.ok)
        for (const v of graph.graph.vertices) {
          const delivery = sinkDelivery(v);
          if (delivery) sinkGuarantees[v.id] = delivery;
        }
      return {
        ...jobDto(j, active),
        graph: j.pipelineVersion.graph,
        events: events.map((e) => ({ at: e.at.toISOString(), attempt: e.attempt, fromState: e.fromState, toState: e.toState, reason: e.reason })),
        metrics: metrics.snapshot(j.id),
        latestCheckpoints: checkpoints.map((c) => checkpointDto(c, acked(c))),
        sinkGuarantees,
        checkpointFailures: active ? checkpointFailures(active) : null,
        checkpointCounts: {
          // Every trigger takes the job's next number, also a savepoint deleted since.
          triggered: j.lastCheckpointNumber,
          inProgress: counted('PENDING'),
          completed: counted('COMPLETED') + counted('DISCARDED'),
          failed: counted('FAILED'),
          discarded: counted('DISCARDED'),
        },
        audit: auditTrail,
      };
    });

    app.patch('/jobs/:id', { schema: { params: idParams, body: rescaleJobBody } }, async (req, reply) => {
      const j = await byId(req.params.id);
      const before = jobs.active.get(j.id)?.desired ?? desiredOf(j.desiredParallelism, j.plan as JobPlan);
      const events = await scaling.request(req.params.id, req.body.parallelism);
      for (const [vertexId, to] of Object.entries(req.body.parallelism))
        await audit.record(principalOf(req), {
          action: 'job.rescale',
          jobId: j.id,
          pipelineId: j.pipelineId,
          target: vertexId,
          details: { vertexId, from: before[vertexId] ?? null, to },
        });
      reply.code(202);
      return { scalingEvents: events.map(scalingDto) };
    });

    app.get('/jobs/:id/key-groups', { schema: { params: idParams } }, async (req): Promise<KeyGroupView[]> => {
      const j = await byId(req.params.id);
      const graph = validateGraph(j.pipelineVersion.graph);
      if (!graph.ok) return [];
      const plan = (jobs.active.get(j.id)?.plan ?? j.plan) as JobPlan;
      const seen = metrics.keyGroups(j.id);
      return graph.graph.vertices
        .filter((v) => operatorSpec(v.type)?.kind === 'keyed')
        .map((v) => {
          const { parallelism, maxParallelism } = plan.vertices[v.id]!;
          const counts = seen.get(v.id);
          const records = Array.from({ length: maxParallelism }, (_, kg) => counts?.get(kg) ?? 0);
          const subtasks = Array.from({ length: parallelism }, (_, index) => {
            const { start, end } = rangeFor(index, parallelism, maxParallelism);
            return { index, start, end, records: records.slice(start, end + 1).reduce((a, b) => a + b, 0) };
          });
          return { vertexId: v.id, maxParallelism, parallelism, subtasks, records };
        });
    });

    app.get('/jobs/:id/scaling', { schema: { params: idParams } }, async (req) => {
      await byId(req.params.id);
      const rows = await prisma.scalingEvent.findMany({ where: { jobId: req.params.id }, orderBy: { id: 'desc' }, take: 100 });
      return rows.map(scalingDto);
    });

    app.post('/jobs/:id/stop', { schema: { params: idParams } }, async (req, reply) => {
      const j = await byId(req.params.id);
      await jobs.stop(req.params.id);
      await audit.record(principalOf(req), { action: 'job.stop', jobId: j.id, pipelineId: j.pipelineId });
      reply.code(202);
      return jobDto(await byId(req.params.id), jobs.active.get(req.params.id));
    });

    app.post('/jobs/:id/cancel', { schema: { params: idParams } }, async (req, reply) => {
      await jobs.cancel(req.params.id);
      const j = await byId(req.params.id);
      await audit.record(principalOf(req), { action: 'job.cancel', jobId: j.id, pipelineId: j.pipelineId });
      reply.code(202);
      return jobDto(await byId(req.params.id), jobs.active.get(req.params.id));
    });

    app.get('/jobs/:id/checkpoints', { schema: { params: idParams } }, async (req) => {
      await byId(req.params.id);
      const rows = await prisma.checkpoint.findMany({
        where: { jobId: req.params.id },
        orderBy: { number: 'desc' },
        take: 100,
        include: { acks: { orderBy: [{ vertexId: 'asc' }, { subtaskIndex: 'asc' }] } },
      });
      return rows.map((c) => ({
        ...checkpointDto(c, c.acks.length),
        acks: c.acks.map((a) => ({
          vertexId: a.vertexId,
          subtaskIndex: a.subtaskIndex,
          ackedAt: a.ackedAt.toISOString(),
          alignmentMs: a.alignmentMs,
          syncMs: a.syncMs,
          asyncMs: a.asyncMs,
          bytes: Number(a.bytes),
        })),
      }));
    });

    for (const [path, kind] of [
      ['/jobs/:id/checkpoints', 'MANUAL'],
      ['/jobs/:id/savepoints', 'SAVEPOINT'],
    ] as const)
      app.post(path, { schema: { params: idParams } }, async (req, reply) => {
        const j = await byId(req.params.id);
        const pending = await jobs.triggerCheckpoint(req.params.id, kind);
        const row = await prisma.checkpoint.findUniqueOrThrow({ where: { id: pending.id } });
        await audit.record(principalOf(req), {
          action: kind === 'SAVEPOINT' ? 'savepoint.trigger' : 'checkpoint.trigger',
          jobId: j.id,
          pipelineId: j.pipelineId,
          target: `#${row.number}`,
          details: { checkpointId: row.id, number: row.number },
        });
        reply.code(202);
        return checkpointDto(row, 0);
      });

    app.delete('/checkpoints/:id', { schema: { params: checkpointIdParams } }, async (req) => {
      const row = await prisma.checkpoint.findUnique({ where: { id: req.params.id } });
      if (!row) throw new Refused('not-found', `no checkpoint ${req.params.id}`);
      if (row.kind !== 'SAVEPOINT')
        throw new Refused(
          'conflict',
          `checkpoint ${row.id} is a ${row.kind} checkpoint: only savepoints are deleted by hand; retention removes the others`,
        );
      if (row.status === 'PENDING') throw new Refused('conflict', `savepoint ${row.id} is still being taken`);
      await prisma.$transaction(async (tx) => {
        // Locked before the question which job started from it, as retention does (a deploy from it holds its row).
        await tx.$queryRaw`SELECT id FROM "Checkpoint" WHERE id = ${row.id} FOR UPDATE`;
        const borrower = (await borrowedCheckpoints(tx, [row.id])).get(row.id);
        if (borrower)
          throw new Refused(
            'conflict',
            `savepoint #${row.number} is where job ${borrower} started, and it has no checkpoint of its own yet to restart from: delete the savepoint after that job's first checkpoint`,
          );
        // Its acknowledgements and state chunks go with it.
        await tx.checkpoint.delete({ where: { id: row.id } });
      });
      await audit.record(principalOf(req), {
        action: 'savepoint.delete',
        jobId: row.jobId,
        target: `#${row.number}`,
        details: { checkpointId: row.id, number: row.number },
      });
      return { ok: true };
    });

    app.get('/jobs/:id/recoveries', { schema: { params: idParams } }, async (req) => {
      await byId(req.params.id);
      return recoveries.list(req.params.id);
    });

    const lines = async (key: string) => (await redis.lrange(key, 0, 999)).map((l) => JSON.parse(l));
    app.get('/jobs/:id/vertices/:vertexId/sample', { schema: { params: sampleParams } }, async (req) => {
      await byId(req.params.id);
      return lines(keys.sample(req.params.id, req.params.vertexId));
    });
    app.get('/jobs/:id/vertices/:vertexId/dead-letters', { schema: { params: sampleParams } }, async (req) => {
      await byId(req.params.id);
      return lines(keys.deadLetters(req.params.id, req.params.vertexId));
    });
    app.get('/jobs/:id/vertices/:vertexId/late', { schema: { params: sampleParams } }, async (req) => {
      await byId(req.params.id);
      return lines(keys.lateRecords(req.params.id, req.params.vertexId));
    });
  };
}
