import { describeUserOperator, type OperatorList } from '@keyflow/api';
import { userOperatorSpecs } from '@keyflow/core';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';

/** The user operators this control plane loaded (KEYFLOW_OPERATORS): the dashboard's palette and forms are made from them. */
export function operatorRoutes(): FastifyPluginAsyncZod {
  return async (app) => {
    app.get('/operators', async (): Promise<OperatorList> => ({ operators: userOperatorSpecs().map(describeUserOperator) }));
  };
}
