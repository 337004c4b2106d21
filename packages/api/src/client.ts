import { io, type Socket } from 'socket.io-client';
import { z } from 'zod';
import type { ClientToServerEvents, ServerToClientEvents } from './events.ts';
import {
  apiErrorSchema,
  checkpointDetailSchema,
  checkpointSchema,
  deadLetterSchema,
  jobDetailSchema,
  jobSchema,
  pipelineSchema,
  sampleSchema,
  recoverySchema,
  scalingEventSchema,
  keyGroupViewSchema,
  type RescaleJobBody,
  workerSchema,
  type ApiError,
  type CreatePipelineBody,
  type DeployJobBody,
} from './rest.ts';

/** An API answer other than 2xx, with the server's error body. */
export class ApiRequestError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiError,
  ) {
    super(`${status} ${body.error}: ${body.message}`);
  }
}

/** A typed client of the control plane's REST API; `baseUrl` is the origin that serves `/api`. */
export function createKeyflowClient(baseUrl = '', fetchImpl: typeof fetch = fetch) {
  async function call<T extends z.ZodType>(schema: T, method: string, path: string, body?: unknown): Promise<z.infer<T>> {
    const res = await fetchImpl(`${baseUrl}/api${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const json = text ? JSON.parse(text) : undefined;
    if (!res.ok) {
      const parsed = apiErrorSchema.safeParse(json);
      throw new ApiRequestError(res.status, parsed.success ? parsed.data : { error: res.statusText, message: text });
    }
    return schema.parse(json);
  }
  const ok = z.object({ ok: z.boolean() });
  return {
    health: () => call(ok, 'GET', '/health'),
    listPipelines: () => call(z.array(pipelineSchema), 'GET', '/pipelines'),
    getPipeline: (id: string) => call(pipelineSchema, 'GET', `/pipelines/${id}`),
    createPipeline: (body: CreatePipelineBody) => call(pipelineSchema, 'POST', '/pipelines', body),
    createVersion: (id: string, graph: unknown) => call(pipelineSchema, 'POST', `/pipelines/${id}/versions`, { graph }),
    renamePipeline: (id: string, name: string) => call(pipelineSchema, 'PATCH', `/pipelines/${id}`, { name }),
    deletePipeline: (id: string) => call(ok, 'DELETE', `/pipelines/${id}`),
    validateGraph: (graph: unknown) => call(ok, 'POST', '/pipelines/validate', { graph }),
    deployJob: (body: DeployJobBody) => call(jobSchema, 'POST', '/jobs', body),
    listJobs: (query: { pipelineId?: string; state?: string } = {}) => call(z.array(jobSchema), 'GET', `/jobs${toQuery(query)}`),
    getJob: (id: string) => call(jobDetailSchema, 'GET', `/jobs/${id}`),
    stopJob: (id: string) => call(jobSchema, 'POST', `/jobs/${id}/stop`),
    cancelJob: (id: string) => call(jobSchema, 'POST', `/jobs/${id}/cancel`),
    listCheckpoints: (id: string) => call(z.array(checkpointDetailSchema), 'GET', `/jobs/${id}/checkpoints`),
    triggerCheckpoint: (id: string) => call(checkpointSchema, 'POST', `/jobs/${id}/checkpoints`),
    /** A savepoint: a checkpoint retention never removes, to start a job from later. */
    triggerSavepoint: (id: string) => call(checkpointSchema, 'POST', `/jobs/${id}/savepoints`),
    deleteSavepoint: (checkpointId: number) => call(ok, 'DELETE', `/checkpoints/${checkpointId}`),
    sample: (id: string, vertexId: string) => call(z.array(sampleSchema), 'GET', `/jobs/${id}/vertices/${vertexId}/sample`),
    deadLetters: (id: string, vertexId: string) => call(z.array(deadLetterSchema), 'GET', `/jobs/${id}/vertices/${vertexId}/dead-letters`),
    rescaleJob: (id: string, body: RescaleJobBody) => call(z.object({ scalingEvents: z.array(scalingEventSchema) }), 'PATCH', `/jobs/${id}`, body),
    keyGroups: (id: string) => call(z.array(keyGroupViewSchema), 'GET', `/jobs/${id}/key-groups`),
    listScalingEvents: (id: string) => call(z.array(scalingEventSchema), 'GET', `/jobs/${id}/scaling`),
    listRecoveries: (id: string) => call(z.array(recoverySchema), 'GET', `/jobs/${id}/recoveries`),
    listWorkers: () => call(z.array(workerSchema), 'GET', '/workers'),
  };
}

export type KeyflowClient = ReturnType<typeof createKeyflowClient>;

function toQuery(q: Record<string, string | undefined>): string {
  const entries = Object.entries(q).filter((e): e is [string, string] => e[1] !== undefined);
  return entries.length ? `?${new URLSearchParams(entries)}` : '';
}

export type KeyflowSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** A Socket.IO connection to the control plane (same origin as the API). */
export function connectKeyflowSocket(baseUrl = ''): KeyflowSocket {
  return io(baseUrl || undefined, { path: '/socket.io', transports: ['websocket', 'polling'] }) as KeyflowSocket;
}
