import { createPipelineBody, createVersionBody, idParams, renamePipelineBody, type Pipeline } from '@keyflow/api';
import { validateGraph } from '@keyflow/core';
import type { PrismaClient } from '@keyflow/db';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ACTIVE_STATES } from '@keyflow/api';
import { Refused } from '../../jobs/refusal.ts';
import { InvalidGraph } from '../errors.ts';
import type { AuditLog } from '../../auth/audit.ts';
import type { Connections } from '../../connections/connections.ts';
import { principalOf } from '../guard.ts';

type PipelineRow = {
  id: string;
  name: string;
  createdAt: Date;
  updatedAt: Date;
  versions: { id: string; version: number; graph: unknown; createdAt: Date }[];
};

function pipelineDto(p: PipelineRow, withVersions: boolean): Pipeline {
  return {
    id: p.id,
    name: p.name,
    createdAt: p.createdAt.toISOString(),
    updatedAt: p.updatedAt.toISOString(),
    latestVersion: Math.max(0, ...p.versions.map((v) => v.version)),
    ...(withVersions && {
      versions: p.versions.map((v) => ({ id: v.id, version: v.version, graph: v.graph, createdAt: v.createdAt.toISOString() })),
    }),
  };
}

export function pipelineRoutes(prisma: PrismaClient, audit: AuditLog, connections: Connections): FastifyPluginAsyncZod {
  /** The graph, valid by the graph rules and naming only connections there are, of the kinds its settings take. */
  const validGraph = async (input: unknown) => {
    const result = validateGraph(input);
    if (!result.ok) throw new InvalidGraph(result.issues);
    const issues = await connections.issuesIn(result.graph);
    if (issues.length) throw new InvalidGraph(issues);
    return result.graph;
  };
  const byId = async (id: string) => {
    const p = await prisma.pipeline.findUnique({ where: { id }, include: { versions: { orderBy: { version: 'desc' } } } });
    if (!p) throw new Refused('not-found', `no pipeline ${id}`);
    return p;
  };
  return async (app) => {
    app.get('/pipelines', async () => {
      const rows = await prisma.pipeline.findMany({ orderBy: { updatedAt: 'desc' }, include: { versions: { select: { version: true } } } });
      return rows.map((p) => pipelineDto({ ...p, versions: p.versions.map((v) => ({ ...v, id: '', graph: null, createdAt: p.createdAt })) }, false));
    });

    app.post('/pipelines/validate', { schema: { body: createVersionBody } }, async (req) => {
      await validGraph(req.body.graph);
      return { ok: true };
    });

    app.post('/pipelines', { schema: { body: createPipelineBody } }, async (req, reply) => {
      const graph = await validGraph(req.body.graph);
      if (await prisma.pipeline.findUnique({ where: { name: req.body.name } }))
        throw new Refused('conflict', `a pipeline named '${req.body.name}' exists already`);
      const p = await prisma.pipeline.create({
        data: { name: req.body.name, versions: { create: { version: 1, graph: graph as object } } },
        include: { versions: true },
      });
      await audit.record(principalOf(req), { action: 'pipeline.create', pipelineId: p.id, target: p.name });
      reply.code(201);
      return pipelineDto(p, true);
    });

    app.get('/pipelines/:id', { schema: { params: idParams } }, async (req) => pipelineDto(await byId(req.params.id), true));

    app.post('/pipelines/:id/versions', { schema: { params: idParams, body: createVersionBody } }, async (req, reply) => {
      const graph = await validGraph(req.body.graph);
      const p = await byId(req.params.id);
      const next = Math.max(0, ...p.versions.map((v) => v.version)) + 1;
      await prisma.$transaction([
        prisma.pipelineVersion.create({ data: { pipelineId: p.id, version: next, graph: graph as object } }),
        prisma.pipeline.update({ where: { id: p.id }, data: { updatedAt: new Date() } }),
      ]);
      await audit.record(principalOf(req), { action: 'pipeline.version', pipelineId: p.id, target: p.name, details: { version: next } });
      reply.code(201);
      return pipelineDto(await byId(p.id), true);
    });

    app.patch('/pipelines/:id', { schema: { params: idParams, body: renamePipelineBody } }, async (req) => {
      await byId(req.params.id);
      const clash = await prisma.pipeline.findUnique({ where: { name: req.body.name } });
      if (clash && clash.id !== req.params.id) throw new Refused('conflict', `a pipeline named '${req.body.name}' exists already`);
      const before = await byId(req.params.id);
      await prisma.pipeline.update({ where: { id: req.params.id }, data: { name: req.body.name } });
      await audit.record(principalOf(req), {
        action: 'pipeline.rename',
        pipelineId: before.id,
        target: req.body.name,
        details: { from: before.name },
      });
      return pipelineDto(await byId(req.params.id), true);
    });

    app.delete('/pipelines/:id', { schema: { params: idParams } }, async (req) => {
      await byId(req.params.id);
      const running = await prisma.job.count({ where: { pipelineId: req.params.id, state: { in: [...ACTIVE_STATES] } } });
      if (running) throw new Refused('conflict', `pipeline has ${running} active job(s): stop or cancel them first`);
      const gone = await prisma.pipeline.delete({ where: { id: req.params.id } });
      await audit.record(principalOf(req), { action: 'pipeline.delete', pipelineId: gone.id, target: gone.name });
      return { ok: true };
    });
  };
}
