import { createKeyflowClient, ApiRequestError } from '@keyflow/api';

/** The REST client: same origin, so `/api` reaches the control plane through the dashboard's proxy. */
export const api = createKeyflowClient('');

/** Every query key the dashboard caches, in one place: socket events and mutations update these. */
export const queryKeys = {
  health: ['health'] as const,
  pipelines: ['pipelines'] as const,
  pipeline: (id: string) => ['pipelines', id] as const,
  jobs: ['jobs'] as const,
  job: (id: string) => ['job', id] as const,
  checkpoints: (id: string) => ['job', id, 'checkpoints'] as const,
  /** The checkpoints the control plane still keeps (savepoints, and the newest completed ones): what a job can start from. */
  retainedCheckpoints: (id: string) => ['job', id, 'checkpoints', 'retained'] as const,
  sample: (id: string, vertexId: string) => ['job', id, 'sample', vertexId] as const,
  deadLetters: (id: string, vertexId: string) => ['job', id, 'dead-letters', vertexId] as const,
  lateRecords: (id: string, vertexId: string) => ['job', id, 'late', vertexId] as const,
  scaling: (id: string) => ['job', id, 'scaling'] as const,
  recoveries: (id: string) => ['job', id, 'recoveries'] as const,
  keyGroups: (id: string) => ['job', id, 'key-groups'] as const,
  workers: ['workers'] as const,
  /** The user operators the control plane loaded (KEYFLOW_OPERATORS). */
  operators: ['operators'] as const,
  /** Who is signed in, with their role. */
  me: ['me'] as const,
  users: ['users'] as const,
  apiKeys: ['api-keys'] as const,
  connections: ['connections'] as const,
  audit: (filter: { action?: string; jobId?: string }) => ['audit', filter] as const,
};

/** A message a person can act on, from whatever a request threw. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiRequestError) return error.body.message || `${error.status} ${error.body.error}`;
  if (error instanceof SyntaxError) return 'the control plane answered with something that is not JSON (is it down?)';
  if (error instanceof TypeError) return 'the dashboard server cannot be reached';
  return error instanceof Error ? error.message : String(error);
}
