import { randomUUID } from 'node:crypto';
import { ApiRequestError, type ApiError, type JobDetail, type JobState } from '@keyflow/api';
import type { GraphInput } from '@keyflow/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisKeys } from '@keyflow/runtime';
import { startStack, waitFor, type Stack } from './harness.ts';

/** An unbounded keyed count into a log sink: 3 subtasks (events#0, count#0 and count#1 chained with log). */
const countGraph = (key = 'user'): GraphInput => ({
  vertices: [
    { id: 'events', type: 'generator', parallelism: 1, settings: { rate: 500, keys: 50, splits: 4 } },
    { id: 'count', type: 'count', parallelism: 2 },
    { id: 'log', type: 'log', parallelism: 2, settings: { sampleSize: 20 } },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key },
    { from: 'count', to: 'log', partitioning: 'forward' },
  ],
});

interface Raw {
  status: number;
  body: ApiError & Record<string, unknown>;
}

describe('REST API', () => {
  let stack: Stack;
  const names = (suffix: string) => `api-${suffix}-${randomUUID().slice(0, 8)}`;

  /** A request as any HTTP client would send it, for the answers the typed client cannot produce. */
  const raw = async (method: string, path: string, body?: unknown): Promise<Raw> => {
    const res = await fetch(`${stack.url}/api${path}`, {
      method,
      headers: { authorization: `Bearer ${stack.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Raw['body'] };
  };

  /** The ApiRequestError a typed-client call rejects with. */
  const failure = async (call: Promise<unknown>): Promise<ApiRequestError> => {
    const err = await call.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(err instanceof ApiRequestError)) throw new Error(`expected an API error, got ${String(err)}`);
    return err;
  };

  const untilState = async (jobId: string, state: JobState, timeoutMs = 20_000): Promise<JobDetail> => {
    let last: JobDetail | undefined;
    try {
      return await waitFor(
        async () => {
          last = await stack.client.getJob(jobId);
          if (last.state === 'FAILED') throw new Error(`job failed: ${last.failureReason}`);
          return last.state === state && last;
        },
        timeoutMs,
        `job ${jobId} to be ${state}`,
      );
    } catch (err) {
      const workers = await stack.client.listWorkers().catch(() => []);
      throw new Error(`${(err as Error).message}; its events: ${JSON.stringify(last?.events)}; workers: ${JSON.stringify(workers)}`, { cause: err });
    }
  };

  const deployRunning = async (graph: GraphInput, opts: { checkpointIntervalMs?: number } = {}) => {
    const p = await stack.client.createPipeline({ name: names('job'), graph });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: opts.checkpointIntervalMs ?? 3_600_000 });
    await untilState(job.id, 'RUNNING');
    return { pipeline: p, job };
  };

  beforeAll(async () => {
    stack = await startStack({ workers: 2, slots: 4 });
  });
  afterAll(async () => {
    await stack?.close();
  });

  describe('pipelines', () => {
    it('creates, lists, gets, versions and renames a pipeline', async () => {
      const name = names('crud');
      const created = await raw('POST', '/pipelines', { name, graph: countGraph() });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ name, latestVersion: 1 });
      const id = created.body.id as string;
      expect((created.body.versions as { version: number }[]).map((v) => v.version)).toEqual([1]);

      const list = await stack.client.listPipelines();
      expect(list.find((p) => p.id === id)).toMatchObject({ name, latestVersion: 1 });

      const got = await stack.client.getPipeline(id);
      expect(got.versions).toHaveLength(1);
      expect(got.versions![0]!.graph).toMatchObject({ vertices: [{ id: 'events' }, { id: 'count' }, { id: 'log' }] });

      const v2 = await raw('POST', `/pipelines/${id}/versions`, { graph: countGraph('item') });
      expect(v2.status).toBe(201);
      expect(v2.body.latestVersion).toBe(2);
      const withVersions = await stack.client.getPipeline(id);
      expect(withVersions.versions!.map((v) => v.version)).toEqual([2, 1]);
      expect(withVersions.versions![0]!.graph).toMatchObject({ edges: [{ key: 'item' }, {}] });

      const renamed = await stack.client.renamePipeline(id, `${name}-renamed`);
      expect(renamed.name).toBe(`${name}-renamed`);
      expect((await stack.client.getPipeline(id)).name).toBe(`${name}-renamed`);

      const other = await stack.client.createPipeline({ name: names('other'), graph: countGraph() });
      const clash = await failure(stack.client.renamePipeline(id, other.name));
      expect(clash.status).toBe(409);
      expect(clash.body.message).toContain(other.name);
      const dup = await failure(stack.client.createPipeline({ name: other.name, graph: countGraph() }));
      expect(dup.status).toBe(409);
      // Renaming to its own name is no clash.
      expect((await stack.client.renamePipeline(other.id, other.name)).name).toBe(other.name);
    });

    it('answers 404 for unknown ids', async () => {
      const id = randomUUID();
      for (const [method, path, body] of [
        ['GET', `/pipelines/${id}`],
        ['POST', `/pipelines/${id}/versions`, { graph: countGraph() }],
        ['PATCH', `/pipelines/${id}`, { name: 'x' }],
        ['DELETE', `/pipelines/${id}`],
        ['GET', `/jobs/${id}`],
        ['POST', `/jobs/${id}/stop`],
        ['POST', `/jobs/${id}/cancel`],
        ['GET', `/jobs/${id}/checkpoints`],
        ['POST', `/jobs/${id}/checkpoints`],
        ['GET', `/jobs/${id}/recoveries`],
        ['GET', `/jobs/${id}/vertices/log/sample`],
        ['GET', `/jobs/${id}/vertices/log/dead-letters`],
      ] as const) {
        const res = await raw(method, path, body);
        expect({ method, path, status: res.status }).toEqual({ method, path, status: 404 });
        expect(res.body.message).toContain(id);
      }
    });

    it('answers 400 with a field-level message for malformed ids, unknown fields and wrong types', async () => {
      const badId = await raw('GET', '/pipelines/not-a-uuid');
      expect(badId.status).toBe(400);
      expect(badId.body.message).toMatch(/params.*\/id/);
      expect(badId.body.issues).toContainEqual(expect.objectContaining({ path: ['params', 'id'] }));
      expect((await raw('POST', '/jobs/42/cancel')).status).toBe(400);

      const unknownField = await raw('POST', '/pipelines', { name: names('x'), graph: countGraph(), colour: 'red' });
      expect(unknownField.status).toBe(400);
      expect(unknownField.body.message).toContain('colour');

      const wrongType = await raw('POST', '/pipelines', { name: 42, graph: countGraph() });
      expect(wrongType.status).toBe(400);
      expect(wrongType.body.message).toMatch(/body.*\/name/);
      expect(wrongType.body.issues).toContainEqual(expect.objectContaining({ path: ['body', 'name'] }));

      const emptyName = await raw('POST', '/pipelines', { name: '  ', graph: countGraph() });
      expect(emptyName.status).toBe(400);
      expect(emptyName.body.message).toContain('a name is needed');

      const deploy = await raw('POST', '/jobs', { pipelineId: randomUUID(), checkpointIntervalMs: 'often' });
      expect(deploy.status).toBe(400);
      expect(deploy.body.issues).toContainEqual(expect.objectContaining({ path: ['body', 'checkpointIntervalMs'] }));
      const tooShort = await raw('POST', '/jobs', { pipelineId: randomUUID(), checkpointTimeoutMs: 10 });
      expect(tooShort.status).toBe(400);
      expect(tooShort.body.message).toContain('checkpointTimeoutMs');

      const badQuery = await raw('GET', '/jobs?state=DANCING');
      expect(badQuery.status).toBe(400);
      expect(badQuery.body.issues).toContainEqual(expect.objectContaining({ path: ['querystring', 'state'] }));

      const notJson = await raw('POST', '/pipelines', '{"name": ');
      expect(notJson.status).toBe(400);
    });

    it('answers 413 for a body over 1 MiB', async () => {
      const name = names('big');
      const res = await raw('POST', '/pipelines', { name, graph: { vertices: [], edges: [], padding: 'x'.repeat(1024 * 1024 + 10) } });
      expect(res.status).toBe(413);
      expect(res.body.error).toBe('payload too large');
      expect((await stack.client.listPipelines()).some((p) => p.name === name)).toBe(false);
    });
  });

  describe('invalid graphs are answered 422 naming the offending operator or edge', () => {
    const gen = { id: 'gen', type: 'generator', parallelism: 1 };
    const log = (parallelism = 1) => ({ id: 'log', type: 'log', parallelism });
    type Expected = { vertexId?: string; edgeId?: string; message: RegExp };
    const cases: [string, unknown, Expected][] = [
      [
        'a cycle',
        {
          vertices: [
            gen,
            { id: 'a', type: 'map', parallelism: 1, settings: { steps: [{ op: 'drop', fields: ['item'] }] } },
            { id: 'b', type: 'filter', parallelism: 1, settings: { field: 'amount', op: 'exists' } },
            log(),
          ],
          edges: [
            { from: 'gen', to: 'a', partitioning: 'forward' },
            { from: 'a', to: 'b', partitioning: 'forward' },
            { from: 'b', to: 'a', partitioning: 'forward' },
            { from: 'b', to: 'log', partitioning: 'forward' },
          ],
        },
        { vertexId: 'a', message: /cycle: a → b → a/ },
      ],
      [
        'a keyed operator without a key',
        {
          vertices: [gen, { id: 'count', type: 'count', parallelism: 1 }, log()],
          edges: [
            { from: 'gen', to: 'count', partitioning: 'rebalance' },
            { from: 'count', to: 'log', partitioning: 'forward' },
          ],
        },
        { vertexId: 'count', edgeId: 'gen->count', message: /count is keyed.*hash edge with a key/ },
      ],
      [
        'a hash edge without a key field',
        {
          vertices: [gen, { id: 'count', type: 'count', parallelism: 1 }, log()],
          edges: [
            { from: 'gen', to: 'count', partitioning: 'hash' },
            { from: 'count', to: 'log', partitioning: 'forward' },
          ],
        },
        { edgeId: 'gen->count', message: /needs a key field/ },
      ],
      [
        'parallelism 0',
        { vertices: [gen, { ...log(), parallelism: 0 }], edges: [{ from: 'gen', to: 'log', partitioning: 'rebalance' }] },
        { vertexId: 'log', message: /parallelism must be between 1 and 128/ },
      ],
      [
        'parallelism above maxParallelism',
        {
          vertices: [gen, { id: 'count', type: 'count', parallelism: 5, maxParallelism: 4 }, log(5)],
          edges: [
            { from: 'gen', to: 'count', partitioning: 'hash', key: 'user' },
            { from: 'count', to: 'log', partitioning: 'forward' },
          ],
        },
        { vertexId: 'count', message: /parallelism must be between 1 and 4/ },
      ],
      [
        'a source above its splits',
        { vertices: [{ ...gen, parallelism: 3, settings: { splits: 2 } }, log()], edges: [{ from: 'gen', to: 'log', partitioning: 'rebalance' }] },
        { vertexId: 'gen', message: /between 1 and 2.*splits/ },
      ],
      [
        'an unknown operator type',
        {
          vertices: [gen, { id: 'tele', type: 'teleport', parallelism: 1 }, log()],
          edges: [
            { from: 'gen', to: 'tele', partitioning: 'forward' },
            { from: 'tele', to: 'log', partitioning: 'forward' },
          ],
        },
        { vertexId: 'tele', message: /unknown operator type 'teleport'/ },
      ],
      [
        'a dangling edge',
        {
          vertices: [gen, log()],
          edges: [
            { from: 'gen', to: 'log', partitioning: 'forward' },
            { id: 'loose', from: 'gen', to: 'ghost', partitioning: 'rebalance' },
          ],
        },
        { edgeId: 'loose', message: /ends at unknown operator 'ghost'/ },
      ],
      [
        'a forward edge with unequal parallelism',
        { vertices: [gen, log(2)], edges: [{ from: 'gen', to: 'log', partitioning: 'forward' }] },
        { edgeId: 'gen->log', message: /forward edge gen->log needs equal parallelism \(gen has 1, log has 2\)/ },
      ],
      [
        'a sink with an output',
        {
          vertices: [gen, log(), { id: 'log2', type: 'log', parallelism: 1 }],
          edges: [
            { from: 'gen', to: 'log', partitioning: 'forward' },
            { from: 'log', to: 'log2', partitioning: 'forward' },
          ],
        },
        { vertexId: 'log', edgeId: 'log->log2', message: /log is a sink: it has no output/ },
      ],
      [
        'an edge into a source',
        {
          vertices: [gen, { id: 'gen2', type: 'generator', parallelism: 1 }, log()],
          edges: [
            { from: 'gen', to: 'gen2', partitioning: 'forward' },
            { from: 'gen2', to: 'log', partitioning: 'forward' },
          ],
        },
        { vertexId: 'gen2', edgeId: 'gen->gen2', message: /gen2 is a source: it takes no input/ },
      ],
      [
        'invalid operator settings',
        { vertices: [{ ...gen, settings: { rate: -1 } }, log()], edges: [{ from: 'gen', to: 'log', partitioning: 'forward' }] },
        { vertexId: 'gen', message: /\S/ },
      ],
      [
        'an operator with no input',
        { vertices: [gen, log(), { id: 'orphan', type: 'log', parallelism: 1 }], edges: [{ from: 'gen', to: 'log', partitioning: 'forward' }] },
        { vertexId: 'orphan', message: /orphan has no input/ },
      ],
      [
        'a malformed vertex',
        { vertices: [gen, { id: 'log', type: 'log', parallelism: 'one' }], edges: [{ from: 'gen', to: 'log', partitioning: 'forward' }] },
        { vertexId: 'log', message: /number/ },
      ],
    ];

    it.each(cases)('%s', async (_name, graph, expected) => {
      const name = names('invalid');
      const res = await raw('POST', '/pipelines', { name, graph });
      expect(res.status).toBe(422);
      expect(res.body.error).toBe('invalid pipeline');
      expect(res.body.issues).toContainEqual(expect.objectContaining({ ...expected, message: expect.stringMatching(expected.message) }));
      expect(res.body.message).toMatch(expected.message);
      // The same graph is refused by the validator and as a new version, and nothing was stored.
      expect((await raw('POST', '/pipelines/validate', { graph })).status).toBe(422);
      expect((await stack.client.listPipelines()).some((p) => p.name === name)).toBe(false);
    });

    it('refuses an invalid graph as a new version and keeps the old one', async () => {
      const p = await stack.client.createPipeline({ name: names('keep'), graph: countGraph() });
      const res = await raw('POST', `/pipelines/${p.id}/versions`, { graph: cases[0]![1] });
      expect(res.status).toBe(422);
      expect(res.body.issues).toContainEqual(expect.objectContaining({ vertexId: 'a' }));
      expect((await stack.client.getPipeline(p.id)).latestVersion).toBe(1);
    });

    it('accepts a valid graph at the validate endpoint', async () => {
      expect(await stack.client.validateGraph(countGraph())).toEqual({ ok: true });
    });
  });

  describe('jobs', () => {
    it('deploys: 404 for an unknown pipeline or version, 201 for a valid one; lists jobs by pipeline and state', async () => {
      const unknown = await failure(stack.client.deployJob({ pipelineId: randomUUID() }));
      expect(unknown.status).toBe(404);
      const p = await stack.client.createPipeline({ name: names('deploy'), graph: countGraph() });
      const noVersion = await failure(stack.client.deployJob({ pipelineId: p.id, version: 9 }));
      expect(noVersion.status).toBe(404);
      expect(noVersion.body.message).toContain('no version 9');

      const res = await raw('POST', '/jobs', { pipelineId: p.id, version: 1, checkpointIntervalMs: 3_600_000 });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ pipelineId: p.id, pipelineName: p.name, version: 1, attempt: 1 });
      expect(['SCHEDULING', 'RUNNING']).toContain(res.body.state);
      expect(res.body.plan).toEqual({
        vertices: {
          events: { parallelism: 1, maxParallelism: 4 },
          count: { parallelism: 2, maxParallelism: 128 },
          log: { parallelism: 2, maxParallelism: 128 },
        },
      });
      const jobId = res.body.id as string;
      const running = await untilState(jobId, 'RUNNING');
      expect(running.events.map((e) => e.toState)).toEqual(['CREATED', 'SCHEDULING', 'RUNNING']);

      const other = await stack.client.createPipeline({ name: names('deploy-other'), graph: countGraph() });
      expect((await stack.client.listJobs({ pipelineId: other.id })).map((j) => j.id)).toEqual([]);
      expect((await stack.client.listJobs({ pipelineId: p.id })).map((j) => j.id)).toEqual([jobId]);
      expect((await stack.client.listJobs({ pipelineId: p.id, state: 'RUNNING' })).map((j) => j.id)).toEqual([jobId]);
      expect(await stack.client.listJobs({ pipelineId: p.id, state: 'STOPPED' })).toEqual([]);
      expect((await stack.client.listJobs({ state: 'RUNNING' })).map((j) => j.id)).toContain(jobId);
      expect((await stack.client.listJobs()).map((j) => j.id)).toContain(jobId);

      // A pipeline with an active job cannot be deleted; once the job is canceled it can.
      const busy = await failure(stack.client.deletePipeline(p.id));
      expect(busy.status).toBe(409);
      expect(busy.body.message).toContain('active job');
      await stack.client.cancelJob(jobId);
      await untilState(jobId, 'CANCELED');
      expect(await stack.client.deletePipeline(p.id)).toEqual({ ok: true });
      expect((await failure(stack.client.getPipeline(p.id))).status).toBe(404);
    });

    it('lists the workers with their slots and the running job’s subtasks', async () => {
      const { job } = await deployRunning(countGraph());
      const workers = await waitFor(
        async () => {
          const ws = await stack.client.listWorkers();
          const mine = ws.flatMap((w) => w.subtasks.filter((s) => s.jobId === job.id));
          return mine.length === 3 && ws;
        },
        10_000,
        'the workers to report the job’s 3 subtasks',
      );
      expect(workers).toHaveLength(2);
      expect(new Set(workers.map((w) => w.pid))).toEqual(new Set(stack.workers.map((w) => w.pid)));
      for (const w of workers) {
        expect(w.slots).toBe(4);
        expect(w.usedSlots).toBe(w.subtasks.length);
        expect(w.heartbeatAgeMs).toBeLessThan(5000);
      }
      const mine = workers.flatMap((w) => w.subtasks.filter((s) => s.jobId === job.id));
      expect(mine.map((s) => `${s.vertexId}#${s.index}@${s.attempt}`).sort()).toEqual(['count#0@1', 'count#1@1', 'events#0@1']);
      await stack.client.cancelJob(job.id);
      await untilState(job.id, 'CANCELED');
    });

    it('stops a RUNNING job with a savepoint: STOPPING, then STOPPED', async () => {
      const { job } = await deployRunning(countGraph());
      const res = await raw('POST', `/jobs/${job.id}/stop`);
      expect(res.status).toBe(202);
      expect(res.body.state).toBe('STOPPING');
      const stopped = await untilState(job.id, 'STOPPED');
      expect(stopped.events.map((e) => e.toState)).toEqual(['CREATED', 'SCHEDULING', 'RUNNING', 'STOPPING', 'STOPPED']);
      expect(stopped.endedAt).not.toBeNull();
      const checkpoints = await stack.client.listCheckpoints(job.id);
      const savepoint = checkpoints.find((c) => c.kind === 'SAVEPOINT');
      expect(savepoint).toMatchObject({ status: 'COMPLETED', acknowledged: 5, totalSubtasks: 5 });
      expect(savepoint!.acks.map((a) => `${a.vertexId}#${a.subtaskIndex}`).sort()).toEqual(['count#0', 'count#1', 'events#0', 'log#0', 'log#1']);
      expect(stopped.events.at(-1)!.reason).toContain(`savepoint ${savepoint!.number}`);
      const again = await failure(stack.client.stopJob(job.id));
      expect(again.status).toBe(409);
    });

    it('cancels a job, and answers 409 to cancelling it again or checkpointing it', async () => {
      const { job } = await deployRunning(countGraph());
      const res = await raw('POST', `/jobs/${job.id}/cancel`);
      expect(res.status).toBe(202);
      expect(res.body.state).toBe('CANCELED');
      const canceled = await stack.client.getJob(job.id);
      expect(canceled.state).toBe('CANCELED');
      expect(canceled.events.map((e) => e.toState)).toEqual(['CREATED', 'SCHEDULING', 'RUNNING', 'CANCELED']);
      const again = await failure(stack.client.cancelJob(job.id));
      expect(again.status).toBe(409);
      expect(again.body.message).toContain('CANCELED');
      const checkpoint = await failure(stack.client.triggerCheckpoint(job.id));
      expect(checkpoint.status).toBe(409);
      // Its subtasks leave the workers.
      await waitFor(
        async () => (await stack.client.listWorkers()).every((w) => w.subtasks.every((s) => s.jobId !== job.id)),
        10_000,
        'the canceled job’s subtasks to leave the workers',
      );
    });

    it('triggers a checkpoint on demand (202) that completes; the log sink’s sample has records', async () => {
      const { job } = await deployRunning(countGraph());
      const res = await raw('POST', `/jobs/${job.id}/checkpoints`);
      expect(res.status).toBe(202);
      // Asked for by hand: recorded as MANUAL, not as a periodic one.
      expect(res.body).toMatchObject({ jobId: job.id, number: 1, kind: 'MANUAL', status: 'PENDING', totalSubtasks: 5 });
      // Asked for again while that one is in flight: taken right after it, not refused.
      const again = await raw('POST', `/jobs/${job.id}/checkpoints`);
      expect(again.status).toBe(202);
      expect(again.body).toMatchObject({ number: 2, status: 'PENDING' });
      const done = await waitFor(
        async () => (await stack.client.listCheckpoints(job.id)).find((c) => c.id === res.body.id && c.status !== 'PENDING'),
        10_000,
        'the on-demand checkpoint to settle',
      );
      expect(done).toMatchObject({ status: 'COMPLETED', acknowledged: 5 });
      expect(done.bytes).toBeGreaterThan(0);

      const sample = await waitFor(
        async () => {
          const s = await stack.client.sample(job.id, 'log');
          return s.length >= 5 && s;
        },
        10_000,
        'the log sink’s sample',
      );
      for (const s of sample) {
        expect(s.record).toMatchObject({ key: expect.stringMatching(/^u\d+$/), count: expect.any(Number) });
        expect(s.at).toBeGreaterThan(Date.now() - 60_000);
      }
      expect(sample.length).toBeLessThanOrEqual(20);
      // A vertex that samples nothing has an empty sample.
      expect(await stack.client.sample(job.id, 'count')).toEqual([]);
      await stack.client.cancelJob(job.id);
    });

    it('serves Prometheus metrics of a running job: records per operator, its state, checkpoints; live and ready', async () => {
      const { job } = await deployRunning(countGraph());
      await raw('POST', `/jobs/${job.id}/checkpoints`);
      const series = (text: string, name: string) => {
        const line = text.split('\n').find((l) => l.startsWith(name));
        return line === undefined ? undefined : Number(line.split(' ').at(-1));
      };
      const text = await waitFor(
        async () => {
          const res = await fetch(`${stack.url}/metrics`, { headers: { authorization: `Bearer ${stack.token}` } });
          expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
          const body = await res.text();
          return (
            (series(body, `keyflow_records_in_total{job="${job.id}",operator="count"}`) ?? 0) > 0 &&
            (series(body, `keyflow_checkpoint_duration_seconds_count{job="${job.id}",kind="MANUAL"}`) ?? 0) > 0 &&
            body
          );
        },
        15_000,
        'records and a completed checkpoint in the metrics',
      );
      expect(series(text, `keyflow_job_state{job="${job.id}",state="RUNNING"}`)).toBe(1);
      expect(series(text, `keyflow_job_stalled{job="${job.id}"}`)).toBe(0);
      expect(series(text, 'keyflow_control_lease_held')).toBe(1);
      expect(series(text, 'keyflow_worker_slots_used{worker="worker-1"}')).toBeGreaterThanOrEqual(0);
      expect(text).toContain('keyflow_control_process_cpu_seconds_total');
      expect(await (await fetch(`${stack.url}/livez`)).json()).toEqual({ live: true });
      expect(await (await fetch(`${stack.url}/readyz`)).json()).toEqual({ ready: true, coordinating: true });
      await stack.client.cancelJob(job.id);
      await waitFor(
        async () =>
          series(
            await (await fetch(`${stack.url}/metrics`, { headers: { authorization: `Bearer ${stack.token}` } })).text(),
            `keyflow_job_state{job="${job.id}",state="CANCELED"}`,
          ) === 1,
        10_000,
        'the canceled state in the metrics',
      );
    });

    it('takes a savepoint on demand, keeps it past retention, lists it, and deletes it (only savepoints)', async () => {
      const { job } = await deployRunning(countGraph(), { checkpointIntervalMs: 500 });
      // A periodic checkpoint every 500 ms is often in flight: the savepoint is taken right after it, never refused.
      for (let i = 0; i < 3; i++) {
        const r = await raw('POST', `/jobs/${job.id}/savepoints`);
        expect(r.status).toBe(202);
        await waitFor(
          async () => (await stack.client.listCheckpoints(job.id)).find((c) => c.id === r.body.id)?.status === 'COMPLETED',
          10_000,
          'the savepoint',
        );
      }
      const res = await raw('POST', `/jobs/${job.id}/savepoints`);
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({ jobId: job.id, kind: 'SAVEPOINT', status: 'PENDING' });
      const savepointId = res.body.id as number;
      // Retention keeps three periodic checkpoints; wait until more than that completed after the savepoint.
      const after = await waitFor(
        async () => {
          const all = await stack.client.listCheckpoints(job.id);
          const periodic = all.filter((c) => c.kind === 'PERIODIC' && c.status === 'COMPLETED' && c.id > savepointId);
          const olderKept = all.some((c) => c.kind === 'PERIODIC' && c.status === 'COMPLETED' && c.id < savepointId);
          return periodic.length >= 3 && !olderKept && all.some((c) => c.status === 'DISCARDED') && all;
        },
        30_000,
        'retention to drop the checkpoints before the savepoint',
      );
      expect(after.find((c) => c.id === savepointId)).toMatchObject({ kind: 'SAVEPOINT', status: 'COMPLETED' });
      const chunks = () => stack.prisma.stateChunk.count({ where: { checkpointId: savepointId } });
      expect(await chunks()).toBeGreaterThan(0);
      // What retention let go stays in the history as DISCARDED, with its metadata, but without its state.
      const discarded = after.filter((c) => c.status === 'DISCARDED');
      expect(discarded.length).toBeGreaterThan(0);
      for (const c of discarded) {
        expect(c).toMatchObject({ kind: 'PERIODIC', acknowledged: 5 });
        expect(c.completedAt).not.toBeNull();
        expect(c.bytes).toBeGreaterThan(0);
        expect(await stack.prisma.stateChunk.count({ where: { checkpointId: c.id } })).toBe(0);
      }
      // The history has every number from the first to the newest: none went missing.
      const numbers = after.map((c) => c.number).sort((a, b) => a - b);
      expect(numbers).toEqual(Array.from({ length: numbers.length }, (_, i) => numbers[0]! + i));

      const periodic = after.find((c) => c.kind === 'PERIODIC')!;
      const refused = await failure(stack.client.deleteSavepoint(periodic.id));
      expect(refused.status).toBe(409);
      expect(refused.body.message).toContain('only savepoints');
      expect(await stack.client.deleteSavepoint(savepointId)).toEqual({ ok: true });
      expect((await stack.client.listCheckpoints(job.id)).some((c) => c.id === savepointId)).toBe(false);
      expect(await chunks()).toBe(0);
      expect((await failure(stack.client.deleteSavepoint(savepointId))).status).toBe(404);
      expect((await raw('DELETE', '/checkpoints/not-a-number')).status).toBe(400);
      await stack.client.cancelJob(job.id);
    });

    it('dead-letters a channel entry it cannot read, with the reason and the raw entry, and keeps running', async () => {
      const { job } = await deployRunning(countGraph(), { checkpointIntervalMs: 1000 });
      // Something that is no Keyflow entry lands on the channel into count#0 (a foreign writer, a corrupted copy).
      const key = redisKeys(stack.prefix).channel(job.id, 1, 0, [0, 0], [0, 0]);
      await stack.redis.xadd(key, '*', 't', 'garbage', 'x', 'not a batch');
      const dead = await waitFor(
        async () => {
          const d = await stack.client.deadLetters(job.id, 'count');
          return d.length > 0 && d;
        },
        10_000,
        'the dead letter',
      );
      expect(dead[0]!.reason).toMatch(/^malformed channel entry \d+-\d+ on .*:ch:0:0\.0:0\.0$/);
      expect(dead[0]!.record).toEqual(['t', 'garbage', 'x', 'not a batch'].map((f) => Buffer.from(f).toString('base64')));
      const j = await stack.client.getJob(job.id);
      expect({ state: j.state, attempt: j.attempt }).toEqual({ state: 'RUNNING', attempt: 1 });
      await waitFor(
        async () => ((await stack.client.getJob(job.id)).metrics?.vertices.count?.deadLetters ?? 0) > 0,
        10_000,
        'the dead letter counted',
      );
      await stack.client.cancelJob(job.id);
    });

    it('routes records that lack the key to dead letters and keeps running', async () => {
      const { job } = await deployRunning(countGraph('nosuchfield'), { checkpointIntervalMs: 1000 });
      const stillRunning = async () => {
        const j = await stack.client.getJob(job.id);
        if (j.state !== 'RUNNING' || j.attempt !== 1) throw new Error(`job left RUNNING: ${JSON.stringify(j.events.slice(3))}`);
      };
      const dead = await waitFor(
        async () => {
          await stillRunning();
          const d = await stack.client.deadLetters(job.id, 'count');
          return d.length > 0 && d;
        },
        10_000,
        'dead letters of count',
      );
      expect(dead[0]!.reason).toContain("lacks the key field 'nosuchfield'");
      expect(dead[0]!.record).toMatchObject({ user: expect.any(String), item: expect.any(String) });

      const metrics = await waitFor(
        async () => {
          const j = await stack.client.getJob(job.id);
          return (j.metrics?.vertices.count?.deadLetters ?? 0) > 0 && j.metrics!;
        },
        10_000,
        'dead letters in the job metrics',
      );
      expect(metrics.vertices.events!.recordsOut).toBeGreaterThan(0);
      expect(metrics.vertices.count!.recordsIn).toBe(0);

      // Bad records are no failure: the job stays RUNNING through a checkpoint, never recovering.
      const before = (await stack.client.listCheckpoints(job.id)).filter((c) => c.status === 'COMPLETED').length;
      await waitFor(
        async () => {
          await stillRunning();
          return (await stack.client.listCheckpoints(job.id)).filter((c) => c.status === 'COMPLETED').length > before;
        },
        10_000,
        'one more completed checkpoint',
      );
      const after = await stack.client.getJob(job.id);
      expect(after.state).toBe('RUNNING');
      expect(after.attempt).toBe(1);
      expect(after.events.map((e) => e.toState)).toEqual(['CREATED', 'SCHEDULING', 'RUNNING']);
      expect(after.metrics!.vertices.count!.deadLetters).toBeGreaterThanOrEqual(metrics.vertices.count!.deadLetters);
      await stack.client.cancelJob(job.id);
    });
  });
});
