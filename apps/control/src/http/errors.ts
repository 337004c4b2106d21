import type { GraphIssue } from '@keyflow/core';
import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { IllegalTransition } from '../jobs/lifecycle.ts';
import { CheckpointInFlight } from '../checkpoints/checkpointCoordinator.ts';
import { Refused, type RefusalKind } from '../jobs/refusal.ts';

/** A pipeline graph that fails validation: answered 422 with every issue. */
export class InvalidGraph extends Error {
  constructor(readonly issues: GraphIssue[]) {
    super(`invalid pipeline: ${issues.map((i) => i.message).join('; ')}`);
  }
}

/** Maps every error to a clear answer: 4xx with field-level issues for bad input, 500 only for our own faults. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) {
      const where = err.validationContext ?? 'request';
      return reply.code(400).send({
        error: 'bad request',
        message: `invalid ${where}: ${err.validation.map((v) => `${v.instancePath || '/'} ${v.message}`).join('; ')}`,
        issues: err.validation.map((v) => ({ path: [where, ...v.instancePath.split('/').filter(Boolean)], message: v.message ?? 'invalid' })),
      });
    }
    if (err instanceof InvalidGraph) return reply.code(422).send({ error: 'invalid pipeline', message: err.message, issues: err.issues });
    if (err instanceof Refused) return reply.code(STATUS[err.kind]).send({ error: statusName(STATUS[err.kind]), message: err.message });
    if (err instanceof IllegalTransition || err instanceof CheckpointInFlight)
      return reply.code(409).send({ error: 'conflict', message: err.message });
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500)
      return reply.code(err.statusCode).send({ error: statusName(err.statusCode), message: err.message });
    req.log.error(err);
    return reply.code(500).send({ error: 'internal error', message: 'the control plane failed to answer; see its log' });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'not found', message: `no route ${req.method} ${req.url}` }));
}

/** The answer to each kind of refusal. */
const STATUS: Record<RefusalKind, number> = {
  unauthorized: 401,
  forbidden: 403,
  'not-found': 404,
  conflict: 409,
  'unsupported-media-type': 415,
  invalid: 422,
  'standing-by': 503,
};

function statusName(status: number): string {
  return (
    (
      {
        400: 'bad request',
        401: 'unauthorized',
        403: 'forbidden',
        404: 'not found',
        409: 'conflict',
        413: 'payload too large',
        415: 'unsupported media type',
        422: 'unprocessable',
        503: 'unavailable',
      } as Record<number, string>
    )[status] ?? 'bad request'
  );
}
