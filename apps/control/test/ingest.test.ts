import { ApiRequestError } from '@keyflow/api';
import type { GraphInput } from '@keyflow/core';
import { ingestBacklog, redisKeys } from '@keyflow/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseIngestBody } from '../src/http/routes/ingest.ts';
import { killWorkerRunning, startStack, tableCounts, waitFor, waitForCheckpoint, waitForRecovered, waitForState, type Stack } from './harness.ts';

/** The largest ingest request this stack takes (KEYFLOW_INGEST_MAX_BYTES, KEYFLOW_INGEST_MAX_RECORDS). */
const MAX_BYTES = 16 * 1024;
const MAX_RECORDS = 300;

/** An HTTP source → keyBy(user) → count → a postgres sink writing each user's count into `table`. */
const graph = (name: string, table: string, source: Record<string, unknown> = {}, parallelism = 2): GraphInput => ({
  vertices: [
    { id: 'ingest', type: 'http', parallelism, settings: { name, partitions: 4, partitionKey: 'user', timestamps: 'ingestion', ...source } },
    { id: 'count', type: 'count', parallelism },
    { id: 'sink', type: 'postgres', parallelism, settings: { table, valueField: 'count' } },
  ],
  edges: [
    { from: 'ingest', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'sink', partitioning: 'forward' },
  ],
});

describe('HTTP ingest', () => {
  let stack: Stack;
  let operatorKey: string;
  let viewerKey: string;
  const post = (name: string, body: string, opts: { type?: string; key?: string | null } = {}) =>
    fetch(`${stack.url}/api/ingest/${name}`, {
      method: 'POST',
      headers: {
        'content-type': opts.type ?? 'application/json',
        ...(opts.key !== null && { authorization: `Bearer ${opts.key ?? operatorKey}` }),
      },
      body,
    });
  const json = async (res: Response) => ({ status: res.status, body: (await res.json()) as Record<string, unknown> });

  beforeAll(async () => {
    stack = await startStack({
      workers: 2,
      env: { KEYFLOW_INGEST_MAX_BYTES: String(MAX_BYTES), KEYFLOW_INGEST_MAX_RECORDS: String(MAX_RECORDS), HEARTBEAT_TIMEOUT_MS: '1500' },
    });
    operatorKey = (await stack.client.createApiKey({ name: 'ingest script', role: 'operator', expiresInDays: 1 })).key;
    viewerKey = (await stack.client.createApiKey({ name: 'ingest viewer', role: 'viewer', expiresInDays: 1 })).key;
  });
  afterAll(async () => {
    await stack?.close();
  });

  const deploy = async (name: string, table: string, source: Record<string, unknown> = {}, body: { checkpointIntervalMs?: number } = {}, p = 2) => {
    const pipeline = await stack.client.createPipeline({ name: `${name}-${stack.prefix}`, graph: graph(name, table, source, p) });
    const job = await stack.client.deployJob({ pipelineId: pipeline.id, checkpointIntervalMs: 1000, ...body });
    await waitForState(stack, job.id, 'RUNNING');
    return job;
  };

  it('counts what is POSTed as JSON, arrays and NDJSON exactly once, through a worker loss, and refuses bad requests whole', async () => {
    const name = 'orders';
    const job = await deploy(name, 'ingest_counts');
    const expected = new Map<string, number>();
    const sent = (users: string[]) => users.forEach((u) => expected.set(u, (expected.get(u) ?? 0) + 1));
    const users = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `u${(from + i) % 13}`);

    // One object.
    expect(await json(await post(name, JSON.stringify({ user: 'solo', amount: 1 })))).toEqual({ status: 202, body: { accepted: 1 } });
    sent(['solo']);
    // An array, through the client.
    const batch = users(120).map((user, i) => ({ user, i }));
    expect(await stack.client.ingest(name, batch)).toEqual({ accepted: 120 });
    sent(batch.map((r) => r.user));
    // NDJSON, blank lines and CRLF line ends included.
    const lines = users(60, 5).map((user, i) => JSON.stringify({ user, line: i }));
    const ndjson = `${lines.slice(0, 30).join('\r\n')}\n\n${lines.slice(30).join('\n')}\n`;
    expect(await json(await post(name, ndjson, { type: 'application/x-ndjson' }))).toEqual({ status: 202, body: { accepted: 60 } });
    sent(users(60, 5));

    // Bad requests name their first bad record, and append nothing (their good records would show as user 'never').
    const notJson = await json(
      await post(name, ['{"user":"never"}', '{"user":"never"}', '{"user": nope}', '[]'].join('\n'), { type: 'application/x-ndjson' }),
    );
    expect(notJson.status).toBe(400);
    expect(notJson.body).toMatchObject({ error: 'bad request', record: { line: 3 }, message: expect.stringMatching(/^line 3 is not valid JSON: /) });
    const notObject = await json(await post(name, JSON.stringify([{ user: 'never' }, { user: 'never' }, 42, 'x'])));
    expect(notObject).toEqual({
      status: 400,
      body: { error: 'bad request', message: 'the record at index 2 is not a JSON object: it is a number', record: { index: 2 } },
    });
    const arrayLine = await json(await post(name, '{"user":"never"}\n[1,2]\n', { type: 'application/x-ndjson' }));
    expect(arrayLine.body).toMatchObject({ message: 'line 2 is not a JSON object: it is an array', record: { line: 2 } });
    const broken = await json(await post(name, '[{"user":"never"},\n{"user": }]'));
    expect(broken.body).toMatchObject({
      record: { index: 1 },
      message: expect.stringMatching(/^the record at index 1 \(line 2\) is not valid JSON: /),
    });
    expect((await json(await post(name, '"just text"'))).body.message).toBe('the body is a string: send a JSON object, or an array of them');
    expect(await json(await post(name, 'user=never', { type: 'text/plain' }))).toEqual({
      status: 415,
      body: { error: 'unsupported media type', message: 'send application/json (an object, or an array of them) or application/x-ndjson' },
    });

    // A worker running the source dies: the job recovers from its last checkpoint and counts on, exactly.
    await waitForCheckpoint(stack, job.id);
    await killWorkerRunning(stack, job.id, 'ingest');
    const more = users(200, 3).map((user) => ({ user }));
    for (let i = 0; i < more.length; i += 50) expect((await stack.client.ingest(name, more.slice(i, i + 50))).accepted).toBe(50);
    sent(more.map((r) => r.user));
    await waitForRecovered(stack, job.id, 60_000);
    await stack.addWorker();

    await waitFor(
      async () => {
        const actual = await tableCounts('ingest_counts').catch(() => new Map<string, number>());
        return actual.size === expected.size && [...expected].every(([u, n]) => actual.get(u) === n);
      },
      60_000,
      'every user counted exactly',
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}: expected ${JSON.stringify([...expected])}, got ${JSON.stringify([...(await tableCounts('ingest_counts'))])}`);
    });
    expect((await tableCounts('ingest_counts')).has('never')).toBe(false);
    // Checkpoints trimmed the log down to what they did not cover yet: nothing, once all was counted and checkpointed.
    const keys = redisKeys(stack.prefix);
    await waitFor(async () => (await ingestBacklog(stack.redis, keys, name, 4)) === 0, 30_000, 'the ingest log to be trimmed');
    await stack.client.cancelJob(job.id);
    // Its source is gone with it.
    const gone = await json(await post(name, '{"user":"late"}'));
    expect(gone).toEqual({ status: 404, body: { error: 'not found', message: "no running job has an HTTP source named 'orders'" } });
  });

  it('answers 429 with Retry-After over the backlog no checkpoint covers yet, and takes records again once one does', async () => {
    const name = 'bounded';
    const job = await deploy(name, 'bounded_counts', { maxBacklog: 5 }, { checkpointIntervalMs: 3_600_000 }, 1);
    expect((await stack.client.ingest(name, [{ user: 'a' }, { user: 'b' }, { user: 'c' }])).accepted).toBe(3);
    const over = await post(name, JSON.stringify([{ user: 'd' }, { user: 'e' }, { user: 'f' }]));
    expect(over.status).toBe(429);
    expect(over.headers.get('retry-after')).toBe('3600');
    expect(((await over.json()) as { message: string }).message).toBe(
      "HTTP source 'bounded' holds 3 records no checkpoint covers yet; 3 more would exceed its maxBacklog of 5: retry in 3600 s",
    );
    // Up to the bound is fine; all or nothing was appended.
    expect((await stack.client.ingest(name, [{ user: 'd' }, { user: 'e' }])).accepted).toBe(2);
    const err = await stack.client.ingest(name, { user: 'f' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiRequestError);
    expect((err as ApiRequestError).status).toBe(429);
    expect((err as ApiRequestError).retryAfterSeconds).toBe(3600);
    // More records than the source ever holds: no point retrying.
    const tooMany = await json(await post(name, JSON.stringify(Array.from({ length: 6 }, () => ({ user: 'z' })))));
    expect(tooMany.status).toBe(413);
    expect(tooMany.body.message).toContain('6 records are more than HTTP source');

    // A checkpoint covers what the job read: the log is trimmed, and takes records again.
    await waitFor(async () => (await stack.client.getJob(job.id)).metrics?.vertices.count?.recordsIn === 5, 30_000, 'the five records read');
    // Read, but not checkpointed: the source's lag is the log's backlog.
    await waitFor(async () => (await stack.client.getJob(job.id)).metrics?.vertices.ingest?.sourceLag?.messages === 5, 10_000, 'a lag of 5');
    await stack.client.triggerCheckpoint(job.id);
    await waitForCheckpoint(stack, job.id);
    await waitFor(async () => (await ingestBacklog(stack.redis, redisKeys(stack.prefix), name, 4)) === 0, 10_000, 'the log trimmed');
    expect((await stack.client.ingest(name, [{ user: 'f' }])).accepted).toBe(1);
    await stack.client.cancelJob(job.id);
  });

  it('refuses a request over KEYFLOW_INGEST_MAX_BYTES or _RECORDS with 413, an unknown source with 404, and a second job with the same source with 409', async () => {
    const name = 'limits';
    const job = await deploy(name, 'limit_counts', {}, {}, 1);
    const big = JSON.stringify(Array.from({ length: 1000 }, (_, i) => ({ user: `user-${i}`, padding: 'x'.repeat(20) })));
    expect(big.length).toBeGreaterThan(MAX_BYTES);
    expect(await json(await post(name, big))).toEqual({
      status: 413,
      body: { error: 'payload too large', message: `the body is over ${MAX_BYTES} bytes (KEYFLOW_INGEST_MAX_BYTES): send fewer records per request` },
    });
    const many = JSON.stringify(Array.from({ length: MAX_RECORDS + 1 }, (_, i) => ({ i })));
    expect(many.length).toBeLessThan(MAX_BYTES);
    expect(await json(await post(name, many))).toEqual({
      status: 413,
      body: { error: 'payload too large', message: '301 records in one request; at most 300 (KEYFLOW_INGEST_MAX_RECORDS): send fewer per request' },
    });
    expect(await json(await post('nobody-reads-this', '{"user":"a"}'))).toEqual({
      status: 404,
      body: { error: 'not found', message: "no running job has an HTTP source named 'nobody-reads-this'" },
    });
    expect((await post('Not A Name', '{}')).status).toBe(400);

    const twin = await stack.client.createPipeline({ name: `twin-${stack.prefix}`, graph: graph(name, 'twin_counts', {}, 1) });
    const refused = await stack.client.deployJob({ pipelineId: twin.id }).catch((e: unknown) => e);
    expect((refused as ApiRequestError).status).toBe(409);
    expect((refused as ApiRequestError).body.message).toBe(
      `HTTP source 'limits' is read by job ${job.id} (RUNNING) already: stop or cancel it first, or name this one differently`,
    );
    await stack.client.cancelJob(job.id);
  });

  it('lets operators in, and no one else: 401 without a key, 403 for a viewer', async () => {
    expect(await json(await post('orders', '{"user":"a"}', { key: null }))).toMatchObject({ status: 401, body: { error: 'unauthorized' } });
    const viewer = await json(await post('orders', '{"user":"a"}', { key: viewerKey }));
    expect(viewer).toMatchObject({ status: 403, body: { message: expect.stringContaining('needs the operator role; you are a viewer') } });
  });
});

describe('an ingest body', () => {
  it('is one object, an array of objects, or NDJSON lines', () => {
    expect(parseIngestBody('{"a":1}', false)).toEqual({ ok: true, records: [{ a: 1 }] });
    expect(parseIngestBody(' [{"a":1}, {"b":[1,{"c":"]"}]}] ', false)).toEqual({ ok: true, records: [{ a: 1 }, { b: [1, { c: ']' }] }] });
    expect(parseIngestBody('[]', false)).toEqual({ ok: true, records: [] });
    expect(parseIngestBody('{"a":1}\r\n\n  {"a":2}\n', true)).toEqual({ ok: true, records: [{ a: 1 }, { a: 2 }] });
    expect(parseIngestBody('', true)).toEqual({ ok: true, records: [] });
  });

  it('names its first bad record: its index or line, and why', () => {
    const bad = (text: string, ndjson = false) => {
      const p = parseIngestBody(text, ndjson);
      return p.ok ? 'parsed' : { message: p.message.replace(/: .*/s, ''), at: p.at };
    };
    expect(bad('[{"a":1}, {"a":"x,\\"}"}, {"a":}, {"a":]')).toEqual({
      message: 'the record at index 2 (line 1) is not valid JSON',
      at: { index: 2 },
    });
    expect(bad('[{"a":1},\n\n  {"a" 2}]')).toEqual({ message: 'the record at index 1 (line 3) is not valid JSON', at: { index: 1 } });
    expect(bad('[{"a":1},]')).toEqual({ message: 'the record at index 1 (line 1) is not valid JSON', at: { index: 1 } });
    expect(bad('[{"a":1}] trailing')).toEqual({ message: 'the body is not valid JSON', at: undefined });
    expect(bad('[] trailing')).toEqual({ message: 'the body is not valid JSON', at: undefined });
    expect(bad('{"a":')).toEqual({ message: 'the body is not valid JSON', at: undefined });
    expect(bad('[{"a":1}, null]')).toEqual({ message: 'the record at index 1 is not a JSON object', at: { index: 1 } });
    expect(bad('  ')).toEqual({ message: 'the body is empty', at: undefined });
    expect(bad('42')).toEqual({ message: 'the body is a number', at: undefined });
    expect(bad('{"a":1}\n{"a":\n', true)).toEqual({ message: 'line 2 is not valid JSON', at: { line: 2 } });
    expect(bad('{"a":1}\n\n"x"\n', true)).toEqual({ message: 'line 3 is not a JSON object', at: { line: 3 } });
  });
});
