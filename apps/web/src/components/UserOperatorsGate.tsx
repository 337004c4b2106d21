'use client';
import { ErrorState, Loading } from '@/components/States';
import { useUserOperators } from '@/lib/userOperators';

/**
 * Shows `children` once the control plane's user operators are in the catalog, so that the builder and the job
 * pages draw, check and rescale them as they do built-ins; says so when they cannot be loaded.
 */
export function UserOperatorsGate({ children }: { children: React.ReactNode }) {
  const operators = useUserOperators();
  if (operators.isPending) return <Loading label="Loading your operators…" />;
  if (operators.data === undefined)
    return <ErrorState what="your operators (KEYFLOW_OPERATORS)" error={operators.error} onRetry={() => void operators.refetch()} />;
  return children;
}
