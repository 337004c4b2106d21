import { connectionBody, connectionIdParams, connectionTestBody } from '@keyflow/api';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Connections } from '../../connections/connections.ts';
import { principalOf } from '../guard.ts';

const admin = { role: 'admin' } as const;

/** Connection profiles: every role reads them (never a secret), operators test them, admins make and change them. */
export function connectionRoutes(connections: Connections): FastifyPluginAsyncZod {
  return async (app) => {
    app.get('/connections', async () => connections.list());
    app.get('/connections/:id', { schema: { params: connectionIdParams } }, async (req) => connections.get(req.params.id));
    app.post('/connections', { config: admin, schema: { body: connectionBody } }, async (req, reply) => {
      const created = await connections.create(req.body, principalOf(req));
      reply.code(201);
      return created;
    });
    app.put('/connections/:id', { config: admin, schema: { params: connectionIdParams, body: connectionBody } }, async (req) =>
      connections.update(req.params.id, req.body, principalOf(req)),
    );
    app.delete('/connections/:id', { config: admin, schema: { params: connectionIdParams } }, async (req) => {
      await connections.delete(req.params.id, principalOf(req));
      return { ok: true };
    });
    app.post('/connections/:id/test', { schema: { params: connectionIdParams, body: connectionTestBody.optional() } }, async (req) =>
      connections.test(req.params.id, req.body ?? {}),
    );
  };
}
