// Through the real API: what a team member may not ask of a shared Keyflow, and the answer they get.
import { randomUUID } from 'node:crypto';
import { ApiRequestError } from '@keyflow/api';
import type { GraphInput } from '@keyflow/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, waitForState, type Stack } from './harness.ts';

/** events → keyBy(user) → count (p) → forward → log (p, chained with count): 1 + p subtasks. */
const graph = (p: number, keys = 100): GraphInput => ({
  vertices: [
    { id: 'events', type: 'generator', parallelism: 1, settings: { rate: 200, keys, splits: 4 } },
    { id: 'count', type: 'count', parallelism: p },
    { id: 'log', type: 'log', parallelism: p },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'log', partitioning: 'forward' },
  ],
});

async function failure(call: Promise<unknown>): Promise<ApiRequestError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ApiRequestError)) throw new Error(`expected an API error, got ${String(err)}`);
  return err;
}

describe('quotas and reserved sink tables, through the API', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      workers: 1,
      slots: 8,
      env: { KEYFLOW_MAX_SUBTASKS_PER_JOB: '4', KEYFLOW_MAX_PARALLELISM: '8', KEYFLOW_MAX_GENERATOR_KEYS: '1000' },
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  const pipeline = (g: GraphInput) => stack.client.createPipeline({ name: `quota-${randomUUID().slice(0, 8)}`, graph: g });

  it("refuses a pipeline whose postgres sink names the sinks' fence table, saying why", async () => {
    const g = graph(1);
    g.vertices[2] = { id: 'out', type: 'postgres', parallelism: 1, settings: { table: 'keyflow_sink_fence' } };
    g.edges[1] = { from: 'count', to: 'out', partitioning: 'forward' };
    const err = await failure(pipeline(g));
    expect(err.status).toBe(422);
    expect(err.message).toMatch(/'keyflow_sink_fence' is reserved: table names starting with keyflow_/);
  });

  it.each<[string, GraphInput, string]>([
    ['too many subtasks', graph(4), 'this job asks for 5 subtasks; KEYFLOW_MAX_SUBTASKS_PER_JOB allows 4'],
    ['an operator above the parallelism quota', graph(9), 'count asks for parallelism 9; KEYFLOW_MAX_PARALLELISM allows 8'],
    ['a generator with too many keys', graph(1, 5000), 'generator events asks for 5,000 keys; KEYFLOW_MAX_GENERATOR_KEYS allows 1,000'],
  ])('refuses to deploy %s with 422, naming the limit, and starts nothing', async (_name, g, message) => {
    const p = await pipeline(g);
    const err = await failure(stack.client.deployJob({ pipelineId: p.id }));
    expect([err.status, err.body.message]).toEqual([422, message]);
    expect(await stack.client.listJobs({ pipelineId: p.id })).toEqual([]);
  });

  it('applies the quotas to the parallelism a deploy asks for and to a rescale, leaving the job as it runs', async () => {
    const p = await pipeline(graph(2));
    const over = await failure(stack.client.deployJob({ pipelineId: p.id, parallelism: { count: 4, log: 4 } }));
    expect([over.status, over.body.message]).toEqual([422, 'this job asks for 5 subtasks; KEYFLOW_MAX_SUBTASKS_PER_JOB allows 4']);

    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 3_600_000 });
    await waitForState(stack, job.id, 'RUNNING');
    const rescale = await failure(stack.client.rescaleJob(job.id, { parallelism: { count: 5 } }));
    expect([rescale.status, rescale.body.message]).toEqual([
      422,
      'this rescale asks for 6 subtasks in the job; KEYFLOW_MAX_SUBTASKS_PER_JOB allows 4',
    ]);
    const detail = await stack.client.getJob(job.id);
    expect(detail.state).toBe('RUNNING');
    expect(detail.plan.vertices.count?.parallelism).toBe(2);
    await stack.client.cancelJob(job.id);
  });
});
