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
  ingestResultSchema,
  type RescaleJobBody,
  workerSchema,
  type ApiError,
  type CreatePipelineBody,
  type DeployJobBody,
} from './rest.ts';
import {
  apiKeySchema,
  auditEventSchema,
  createdApiKeySchema,
  meSchema,
  userSchema,
  type AuditQuery,
  type CreateApiKeyBody,
  type CreateUserBody,
  type UpdateUserBody,
} from './auth.ts';
import { connectionSchema, connectionTestResultSchema, type ConnectionBody, type ConnectionTestBody } from './connections.ts';
import { operatorListSchema } from './operators.ts';

/** An API answer other than 2xx, with the server's error body. */
export class ApiRequestError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiError,
    /** From a 429's `Retry-After` (or better-auth's `X-Retry-After`): seconds until the next attempt may be made. */
    readonly retryAfterSeconds?: number,
  ) {
    super(`${status} ${body.error}: ${body.message}`);
  }
}

export interface ClientOptions {
  /** An API key (`kf_…`), sent as `Authorization: Bearer`; without one, the browser's session cookie is used. */
  token?: string;
  fetch?: typeof fetch;
}

/**
 * A typed client of the control plane's REST API; `baseUrl` is the origin that serves `/api`. Every request that
 * changes something goes with a JSON content type (a body-less one with `{}`): the control plane refuses a
 * cookie-authenticated change without it, which a cross-site form or `no-cors` fetch cannot send.
 */
export function createKeyflowClient(baseUrl = '', opts: ClientOptions = {}) {
  const fetchImpl = opts.fetch ?? fetch;
  const auth: Record<string, string> = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
  async function call<T extends z.ZodType>(schema: T, method: string, path: string, body?: unknown): Promise<z.infer<T>> {
    const sendsJson = body !== undefined || method !== 'GET';
    const res = await fetchImpl(`${baseUrl}/api${path}`, {
      method,
      headers: sendsJson ? { ...auth, 'content-type': 'application/json' } : auth,
      body: sendsJson ? JSON.stringify(body ?? {}) : undefined,
      credentials: 'same-origin',
    });
    const text = await res.text();
    const json = text ? JSON.parse(text) : undefined;
    if (!res.ok) {
      const parsed = apiErrorSchema.safeParse(json);
      // Sign-in answers come from the auth library as `{ code, message }`.
      const message = typeof json?.message === 'string' ? json.message : text;
      const retryAfter = Number(res.headers.get('retry-after') ?? res.headers.get('x-retry-after') ?? NaN);
      throw new ApiRequestError(
        res.status,
        parsed.success ? parsed.data : { error: json?.code ?? res.statusText, message },
        Number.isFinite(retryAfter) ? retryAfter : undefined,
      );
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
    /** Samples of the records a window operator took too late (beyond its allowed lateness), newest first. */
    lateRecords: (id: string, vertexId: string) => call(z.array(deadLetterSchema), 'GET', `/jobs/${id}/vertices/${vertexId}/late`),
    rescaleJob: (id: string, body: RescaleJobBody) => call(z.object({ scalingEvents: z.array(scalingEventSchema) }), 'PATCH', `/jobs/${id}`, body),
    keyGroups: (id: string) => call(z.array(keyGroupViewSchema), 'GET', `/jobs/${id}/key-groups`),
    listScalingEvents: (id: string) => call(z.array(scalingEventSchema), 'GET', `/jobs/${id}/scaling`),
    listRecoveries: (id: string) => call(z.array(recoverySchema), 'GET', `/jobs/${id}/recoveries`),
    listWorkers: () => call(z.array(workerSchema), 'GET', '/workers'),
    /** The user operators the control plane loaded (KEYFLOW_OPERATORS), with their versions and settings schemas. */
    listOperators: () => call(operatorListSchema, 'GET', '/operators'),
    /** Appends records (an object or an array of them) to a running job's HTTP source, all or none; a 429 says when to retry. */
    ingest: (sourceName: string, records: unknown) => call(ingestResultSchema, 'POST', `/ingest/${encodeURIComponent(sourceName)}`, records),
    /** Signs in with email and password: the answer sets the session cookie (httpOnly; the token is in nothing else). */
    signIn: (email: string, password: string) =>
      call(z.object({ user: z.object({ id: z.string(), email: z.string() }).loose() }).loose(), 'POST', '/auth/sign-in/email', {
        email,
        password,
      }),
    signOut: () => call(z.object({ success: z.boolean() }).loose(), 'POST', '/auth/sign-out'),
    me: () => call(meSchema, 'GET', '/me'),
    listUsers: () => call(z.array(userSchema), 'GET', '/users'),
    createUser: (body: CreateUserBody) => call(userSchema, 'POST', '/users', body),
    updateUser: (id: string, body: UpdateUserBody) => call(userSchema, 'PATCH', `/users/${id}`, body),
    deleteUser: (id: string) => call(ok, 'DELETE', `/users/${id}`),
    listApiKeys: () => call(z.array(apiKeySchema), 'GET', '/api-keys'),
    createApiKey: (body: CreateApiKeyBody) => call(createdApiKeySchema, 'POST', '/api-keys', body),
    revokeApiKey: (id: string) => call(ok, 'DELETE', `/api-keys/${id}`),
    listConnections: () => call(z.array(connectionSchema), 'GET', '/connections'),
    getConnection: (id: string) => call(connectionSchema, 'GET', `/connections/${id}`),
    createConnection: (body: ConnectionBody) => call(connectionSchema, 'POST', '/connections', body),
    /** Replaces what is not secret; a secret left out stays, null or '' clears it. */
    updateConnection: (id: string, body: ConnectionBody) => call(connectionSchema, 'PUT', `/connections/${id}`, body),
    deleteConnection: (id: string) => call(ok, 'DELETE', `/connections/${id}`),
    /** Whether the connection's host answers and takes its credentials (and has the stream, subject… asked about). */
    testConnection: (id: string, body: ConnectionTestBody = {}) => call(connectionTestResultSchema, 'POST', `/connections/${id}/test`, body),
    listAudit: (query: AuditQuery = {}) =>
      call(
        z.array(auditEventSchema),
        'GET',
        `/audit${toQuery(Object.fromEntries(Object.entries(query).map(([k, v]) => [k, v === undefined ? undefined : String(v)])))}`,
      ),
  };
}

export type KeyflowClient = ReturnType<typeof createKeyflowClient>;

function toQuery(q: Record<string, string | undefined>): string {
  const entries = Object.entries(q).filter((e): e is [string, string] => e[1] !== undefined);
  return entries.length ? `?${new URLSearchParams(entries)}` : '';
}

export type KeyflowSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/**
 * A Socket.IO connection to the control plane (same origin as the API). The handshake is authenticated by the
 * session cookie (browser) or by `token`, an API key.
 */
export function connectKeyflowSocket(baseUrl = '', token?: string): KeyflowSocket {
  return io(baseUrl || undefined, { path: '/socket.io', transports: ['websocket', 'polling'], ...(token && { auth: { token } }) }) as KeyflowSocket;
}
