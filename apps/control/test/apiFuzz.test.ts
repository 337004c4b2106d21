import { randomUUID } from 'node:crypto';
import type { GraphInput } from '@keyflow/core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './harness.ts';

// Generated malformed requests against every route: whatever arrives, the answer is a 4xx with a message (or a
// 2xx when the generator happened to build a valid request), never a 5xx, and the server stays up.

const graph: GraphInput = {
  vertices: [
    { id: 'events', type: 'generator', parallelism: 1, settings: { rate: 100, keys: 10, splits: 2 } },
    { id: 'count', type: 'count', parallelism: 1 },
    { id: 'log', type: 'log', parallelism: 1 },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'log', partitioning: 'forward' },
  ],
};

const routes: [method: string, path: string][] = [
  ['GET', '/jobs'],
  ['POST', '/jobs'],
  ['GET', '/jobs/:job'],
  ['PATCH', '/jobs/:job'],
  ['GET', '/jobs/:job/key-groups'],
  ['GET', '/jobs/:job/scaling'],
  ['POST', '/jobs/:job/stop'],
  ['POST', '/jobs/:job/cancel'],
  ['GET', '/jobs/:job/checkpoints'],
  ['POST', '/jobs/:job/checkpoints'],
  ['POST', '/jobs/:job/savepoints'],
  ['GET', '/jobs/:job/recoveries'],
  ['DELETE', '/checkpoints/:checkpoint'],
  ['GET', '/jobs/:job/vertices/:vertex/sample'],
  ['GET', '/jobs/:job/vertices/:vertex/dead-letters'],
  ['GET', '/pipelines'],
  ['POST', '/pipelines/validate'],
  ['POST', '/pipelines'],
  ['GET', '/pipelines/:pipeline'],
  ['POST', '/pipelines/:pipeline/versions'],
  ['PATCH', '/pipelines/:pipeline'],
  ['DELETE', '/pipelines/:pipeline'],
  ['GET', '/workers'],
  ['GET', '/operators'],
  ['GET', '/me'],
  ['GET', '/users'],
  ['POST', '/users'],
  ['PATCH', '/users/:job'],
  ['DELETE', '/users/:job'],
  ['GET', '/api-keys'],
  ['POST', '/api-keys'],
  ['DELETE', '/api-keys/:job'],
  ['GET', '/audit'],
  ['GET', '/connections'],
  ['POST', '/connections'],
  ['GET', '/connections/:connection'],
  ['PUT', '/connections/:connection'],
  ['DELETE', '/connections/:connection'],
  ['POST', '/connections/:connection/test'],
];

describe('REST API under generated malformed requests', () => {
  let stack: Stack;
  let pipelineId = '';
  let jobId = '';
  let connectionId = '';
  beforeAll(async () => {
    // No workers: a deployed job stays SCHEDULING, and nothing a request starts runs.
    stack = await startStack({ workers: 0 });
    pipelineId = (await stack.client.createPipeline({ name: `fuzz-${stack.prefix}`, graph })).id;
    jobId = (await stack.client.deployJob({ pipelineId })).id;
    connectionId = (await stack.client.createConnection({ name: `fuzz-${stack.prefix}`, kind: 'nats', url: 'nats://127.0.0.1:4222' })).id;
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('answers a few hundred of them with 4xx and a message, never 5xx, and stays up', async () => {
    const segment = (real: () => string) =>
      fc.oneof(
        fc.constant(null).map(() => real()),
        fc.constant(null).map(() => randomUUID()),
        fc.string({ maxLength: 40 }),
        fc.integer().map(String),
        fc.constantFrom('..', '%00', 'null', 'undefined', ' ', '9'.repeat(400), '{}', 'ü'),
      );
    const validBodies = [
      { name: 'x', graph },
      { graph },
      { pipelineId: '', checkpointIntervalMs: 1000 },
      { parallelism: { count: 2 } },
      { name: 'renamed' },
      { email: 'someone@example.com', password: 'long enough password', role: 'viewer' },
      { role: 'operator' },
      { name: 'fuzz key', role: 'viewer', expiresInDays: 1 },
      { name: 'fuzz-connection', kind: 'redis', url: 'redis://127.0.0.1:6379', password: 'fuzz password' },
      { stream: 'FUZZ', subject: 'fuzz.>' },
    ];
    // A valid body with one field replaced, added or removed; or anything JSON can carry; or bytes that are not JSON.
    const body = fc.oneof(
      fc
        .record({ base: fc.constantFrom(...validBodies), key: fc.string({ maxLength: 12 }), value: fc.jsonValue({ maxDepth: 3 }) })
        .map(({ base, key, value }) => ({ kind: 'json' as const, value: { ...base, [key]: value } })),
      fc.record({ base: fc.constantFrom(...validBodies), drop: fc.nat() }).map(({ base, drop }) => {
        const keys = Object.keys(base);
        const { [keys[drop % keys.length]!]: _, ...rest } = base as Record<string, unknown>;
        return { kind: 'json' as const, value: rest };
      }),
      fc.jsonValue({ maxDepth: 4 }).map((value) => ({ kind: 'json' as const, value })),
      fc.string({ maxLength: 200 }).map((value) => ({ kind: 'text' as const, value })),
      fc.constant({ kind: 'none' as const, value: undefined }),
    );
    const query = fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 20 }), { maxKeys: 3 });
    const request = fc.record({
      route: fc.constantFrom(...routes),
      job: segment(() => jobId),
      pipeline: segment(() => pipelineId),
      vertex: segment(() => 'count'),
      connection: segment(() => connectionId),
      body,
      query,
      // As the stack's admin, with a key that is not one, or with no credentials at all.
      credentials: fc.constantFrom('admin', 'admin', 'admin', 'bad-key', 'none'),
    });

    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, async ({ route: [method, template], job, pipeline, vertex, connection, body, query, credentials }) => {
        const path = template
          .replace(':job', encodeURIComponent(job))
          .replace(':pipeline', encodeURIComponent(pipeline))
          .replace(':vertex', encodeURIComponent(vertex))
          .replace(':connection', encodeURIComponent(connection))
          .replace(':checkpoint', encodeURIComponent(job.length > 30 ? '1' : job));
        const qs = new URLSearchParams(query).toString();
        // fetch sends no body with a GET.
        if (method === 'GET') body = { kind: 'none', value: undefined };
        const res = await fetch(`${stack.url}/api${path}${qs ? `?${qs}` : ''}`, {
          method,
          headers: {
            ...(credentials !== 'none' && { authorization: `Bearer ${credentials === 'admin' ? stack.token : 'kf_notakey'}` }),
            ...(body.kind !== 'none' && { 'content-type': 'application/json' }),
          },
          body: body.kind === 'none' ? undefined : body.kind === 'text' ? body.value : JSON.stringify(body.value),
        });
        const text = await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        expect(res.status, `${method} ${path} answered ${res.status}: ${text.slice(0, 300)}`).toBeLessThan(500);
        if (res.status >= 400) expect(JSON.parse(text)).toMatchObject({ message: expect.any(String) });
        // Without valid credentials nothing is done and nothing is told, whatever else is wrong with the request.
        // (A path too long for the router is refused before any route runs: 414.)
        if (credentials !== 'admin') expect([401, 414], `${method} ${path}: ${text.slice(0, 200)}`).toContain(res.status);
      }),
      { numRuns: 400 },
    );
    // The generator reached both the validation and what lies behind it.
    expect(statuses.get(400) ?? 0).toBeGreaterThan(50);
    expect([...statuses.keys()].some((s) => s < 300)).toBe(true);
    expect((await fetch(`${stack.url}/api/pipelines`, { headers: { authorization: `Bearer ${stack.token}` } })).status).toBe(200);
  });
});
