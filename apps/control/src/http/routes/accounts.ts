import { auditQuery, createApiKeyBody, createUserBody, updateUserBody, userIdParams } from '@keyflow/api';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Accounts } from '../../auth/accounts.ts';
import type { AuditLog } from '../../auth/audit.ts';
import { principalOf } from '../guard.ts';

const admin = { role: 'admin' } as const;

/** Who am I (any role), and the admin's routes: users, API keys and the audit trail. */
export function accountRoutes(accounts: Accounts, audit: AuditLog): FastifyPluginAsyncZod {
  return async (app) => {
    app.get('/me', async (req) => accounts.me(principalOf(req)));

    app.get('/users', { config: admin }, async () => accounts.listUsers());
    app.post('/users', { config: admin, schema: { body: createUserBody } }, async (req, reply) => {
      const user = await accounts.createUser(req.body, principalOf(req));
      reply.code(201);
      return user;
    });
    app.patch('/users/:id', { config: admin, schema: { params: userIdParams, body: updateUserBody } }, async (req) =>
      accounts.updateUser(req.params.id, req.body, principalOf(req)),
    );
    app.delete('/users/:id', { config: admin, schema: { params: userIdParams } }, async (req) => {
      await accounts.deleteUser(req.params.id, principalOf(req));
      return { ok: true };
    });

    app.get('/api-keys', { config: admin }, async () => accounts.listApiKeys());
    app.post('/api-keys', { config: admin, schema: { body: createApiKeyBody } }, async (req, reply) => {
      const key = await accounts.createApiKey(req.body, principalOf(req));
      reply.code(201);
      return key;
    });
    app.delete('/api-keys/:id', { config: admin, schema: { params: userIdParams } }, async (req) => {
      await accounts.revokeApiKey(req.params.id, principalOf(req));
      return { ok: true };
    });

    app.get('/audit', { config: admin, schema: { querystring: auditQuery } }, async (req) => audit.list(req.query));
  };
}
