'use client';
import { ApiRequestError, userOperatorSpec, type UserOperator } from '@keyflow/api';
import { clearUserOperators, registerOperatorSpec, userOperatorSpecs } from '@keyflow/core';
import { queryOptions, useQuery } from '@tanstack/react-query';
import { api, queryKeys } from './api';

/**
 * Makes this page's catalog hold the control plane's user operators, and only those. One whose version is already
 * held keeps its entry (the same object, so what was derived from it stays); one no longer listed goes.
 */
export function registerUserOperators(listed: readonly UserOperator[]): void {
  const held = new Map(userOperatorSpecs().map((s) => [s.version, s]));
  clearUserOperators();
  for (const op of listed) registerOperatorSpec(held.get(op.version) ?? userOperatorSpec(op));
}

/**
 * The control plane's user operators, put into the catalog as they arrive: once the query has data, the catalog
 * (`operatorSpec`) knows them. A control plane older than the route (404) has none.
 */
export const userOperatorsQuery = queryOptions({
  queryKey: queryKeys.operators,
  queryFn: async (): Promise<UserOperator[]> => {
    let listed: UserOperator[];
    try {
      listed = (await api.listOperators()).operators;
    } catch (error) {
      if (!(error instanceof ApiRequestError && error.status === 404)) throw error;
      listed = [];
    }
    registerUserOperators(listed);
    return listed;
  },
  // They change only when the control plane restarts with other code.
  staleTime: 60_000,
});

export const useUserOperators = () => useQuery(userOperatorsQuery);
