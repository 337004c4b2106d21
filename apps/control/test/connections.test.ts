import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeyflowClient, type Connection, type ConnectionBody, type Role } from '@keyflow/api';
import type { GraphInput } from '@keyflow/core';
import { loadConnection } from '@keyflow/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeConnection } from '../src/connections/connectionProbe.ts';
import { startStack, TEST_SECRET_KEY, waitFor, type Stack } from './harness.ts';

/** A port nothing listens on (it was free a moment ago). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

/** A server of this test's own, on a free port, that wants a password (nats-server or redis-server from the machine). */
async function serverWithPassword(command: string, args: (port: number) => string[]): Promise<{ port: number; stop: () => void }> {
  const port = await freePort();
  const child: ChildProcess = spawn(command, args(port), { stdio: 'ignore' });
  await waitFor(() => listening(port), 10_000, `${command} on port ${port}`);
  return { port, stop: () => child.kill('SIGKILL') };
}

const natsSource = (connection: string): GraphInput => ({
  vertices: [
    { id: 'orders', type: 'nats', parallelism: 1, settings: { connection, stream: 'ORDERS' } },
    { id: 'log', type: 'log', parallelism: 1 },
  ],
  edges: [{ from: 'orders', to: 'log', partitioning: 'forward' }],
});

const generatorOnly: GraphInput = {
  vertices: [
    { id: 'events', type: 'generator', parallelism: 1, settings: { rate: 10 } },
    { id: 'log', type: 'log', parallelism: 1 },
  ],
  edges: [{ from: 'events', to: 'log', partitioning: 'forward' }],
};

/**
 * Connection profiles on a control plane without workers, logging everything (trace) into the test: who may do what,
 * secrets that never come back out (no answer, no log line, not in clear in Postgres), the pipelines that hold a
 * connection, and tests of real servers that tell an unreachable host from refused credentials.
 */
describe('connections', () => {
  let stack: Stack;
  const logs: string[] = [];
  const answers: string[] = [];
  const keys: Record<Role, string> = { viewer: '', operator: '', admin: '' };
  const servers: { stop: () => void }[] = [];
  const natsDir = mkdtempSync(join(tmpdir(), 'kf-nats-'));
  // Every secret the test hands the control plane: none may ever come back out.
  const SECRETS = ['redis-pass-7f3a9c', 'nats-pass-b81e42', 'http-token-5c0d11', 'header-e6a1f07d', 'wrong-pass-93ab2e'];
  const [REDIS_PASSWORD, NATS_PASSWORD, HTTP_TOKEN, HEADER, WRONG] = SECRETS as [string, string, string, string, string];

  const send = async (as: Role, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${stack.url}/api${path}`, {
      method,
      headers: { authorization: `Bearer ${keys[as]}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    answers.push(`${method} ${path} ${res.status} ${text}`);
    return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
  const create = async (body: ConnectionBody) => {
    const res = await send('admin', 'POST', '/connections', body);
    expect(res.status, JSON.stringify(res.json)).toBe(201);
    return res.json as unknown as Connection;
  };
  const test = async (id: string, body: Record<string, string> = {}) =>
    (await send('operator', 'POST', `/connections/${id}/test`, body)).json as { ok: boolean; message: string; latencyMs: number };

  beforeAll(async () => {
    stack = await startStack({ workers: 0, env: { LOG_LEVEL: 'trace' }, controlLog: (line) => logs.push(line) });
    keys.admin = stack.token;
    for (const role of ['viewer', 'operator'] as const)
      keys[role] = (await stack.client.createApiKey({ name: `${role} key`, role, expiresInDays: 1 })).key;
  });
  afterAll(async () => {
    for (const s of servers) s.stop();
    rmSync(natsDir, { recursive: true, force: true });
    await stack?.close();
  });

  it('every role lists them, only an admin makes, changes or deletes one', async () => {
    const nats = await create({ name: 'local-nats', kind: 'nats', url: 'nats://127.0.0.1:4222' });
    expect(nats).toMatchObject({ kind: 'nats', url: 'nats://127.0.0.1:4222', username: null, hasPassword: false, hasToken: false, usedBy: [] });
    // As the audit trail labels who made it: here the admin's key.
    expect(nats.createdBy).toMatch(new RegExp(`^${stack.admin.email} \\(key .+\\)$`));

    for (const role of ['viewer', 'operator'] as const) {
      const made = await send(role, 'POST', '/connections', { name: `by-${role}`, kind: 'nats', url: 'nats://127.0.0.1:4222' });
      expect(made.status).toBe(403);
      expect(made.json.message).toContain('needs the admin role');
      expect((await send(role, 'PUT', `/connections/${nats.id}`, { name: 'local-nats', kind: 'nats', url: 'nats://x:1' })).status).toBe(403);
      expect((await send(role, 'DELETE', `/connections/${nats.id}`)).status).toBe(403);
      const listed = await send(role, 'GET', '/connections');
      expect(listed.status).toBe(200);
      expect((listed.json as unknown as Connection[]).map((c) => c.name)).toContain('local-nats');
      expect((await send(role, 'GET', `/connections/${nats.id}`)).json).toMatchObject({ name: 'local-nats' });
    }
    // Operators test connections (as they deploy what uses them); viewers do not.
    expect((await send('viewer', 'POST', `/connections/${nats.id}/test`, {})).status).toBe(403);

    expect((await send('admin', 'POST', '/connections', { name: 'local-nats', kind: 'nats', url: 'nats://127.0.0.1:4222' })).status).toBe(409);
    const withUser = await send('admin', 'POST', '/connections', { name: 'in-url', kind: 'redis', url: 'redis://me:secret@127.0.0.1:6379' });
    expect(withUser.status).toBe(400);
    expect(withUser.json.message).toContain('put the user name and password in their own fields');
    const wrongScheme = await send('admin', 'POST', '/connections', { name: 'bad', kind: 'postgres', url: 'http://127.0.0.1:5432' });
    expect(wrongScheme.json.message).toContain('a postgres URL starts with postgresql:// or postgres://');
    const token = await send('admin', 'POST', '/connections', { name: 'bad', kind: 'redis', url: 'redis://127.0.0.1', token: 't' });
    expect(token.json.message).toContain('a redis connection takes a user name and password, no token');

    const renamed = await send('admin', 'PUT', `/connections/${nats.id}`, { name: 'local-nats-2', kind: 'nats', url: 'nats://127.0.0.1:4222' });
    expect(renamed.json).toMatchObject({ name: 'local-nats-2' });
    expect((await send('admin', 'DELETE', `/connections/${nats.id}`)).json).toEqual({ ok: true });
    expect((await send('viewer', 'GET', `/connections/${nats.id}`)).status).toBe(404);
  });

  it('keeps secrets sealed: told about, never shown; kept when left out of a change, cleared with null', async () => {
    const redis = await create({ name: 'cache', kind: 'redis', url: 'redis://127.0.0.1:6379/0', username: 'default', password: REDIS_PASSWORD });
    expect(redis).toMatchObject({ hasPassword: true, hasToken: false, username: 'default' });
    expect(JSON.stringify(redis)).not.toContain(REDIS_PASSWORD);

    // Left out: kept (the worker opens it with the same key).
    const moved = await send('admin', 'PUT', `/connections/${redis.id}`, { name: 'cache', kind: 'redis', url: 'redis://127.0.0.1:6379/1' });
    expect(moved.json).toMatchObject({ url: 'redis://127.0.0.1:6379/1', hasPassword: true, username: null });
    expect(await loadConnection(stack.prisma, 'cache', TEST_SECRET_KEY)).toEqual({
      name: 'cache',
      kind: 'redis',
      url: 'redis://127.0.0.1:6379/1',
      password: REDIS_PASSWORD,
    });
    await expect(loadConnection(stack.prisma, 'cache', undefined)).rejects.toThrow(
      /^connection 'cache': its secrets cannot be opened: KEYFLOW_SECRET_KEY is not set/,
    );
    await expect(loadConnection(stack.prisma, 'cache', 'another key of sixteen+')).rejects.toThrow(/sealed with another KEYFLOW_SECRET_KEY/);
    await expect(loadConnection(stack.prisma, 'nope', TEST_SECRET_KEY)).rejects.toThrow("there is no connection named 'nope'");

    // In Postgres the secret is sealed: no plaintext in any column.
    const row = await stack.prisma.connection.findUniqueOrThrow({ where: { name: 'cache' } });
    expect(Buffer.from(row.secret!).includes(Buffer.from(REDIS_PASSWORD))).toBe(false);
    expect(JSON.stringify(row.config)).not.toContain(REDIS_PASSWORD);

    const cleared = await send('admin', 'PUT', `/connections/${redis.id}`, {
      name: 'cache',
      kind: 'redis',
      url: 'redis://127.0.0.1:6379/1',
      password: null,
    });
    expect(cleared.json).toMatchObject({ hasPassword: false });
    expect((await stack.prisma.connection.findUniqueOrThrow({ where: { name: 'cache' } })).secret).toBeNull();

    const hook = await create({
      name: 'hook',
      kind: 'http',
      url: 'https://hooks.example.com/in',
      token: HTTP_TOKEN,
      headers: { 'X-Team': 'data' },
      secretHeaders: { 'X-Api-Key': HEADER },
    });
    expect(hook).toMatchObject({ hasToken: true, headers: { 'X-Team': 'data' }, secretHeaders: ['X-Api-Key'] });
    const oneHeaderLess = await send('admin', 'PUT', `/connections/${hook.id}`, {
      name: 'hook',
      kind: 'http',
      url: 'https://hooks.example.com/in',
      headers: { 'X-Team': 'data' },
      secretHeaders: { 'X-Api-Key': '' },
    });
    expect(oneHeaderLess.json).toMatchObject({ hasToken: true, secretHeaders: [] });

    // The test run's stacks share one database: only this stack's admin's entries are this test's.
    const own = (a: { actorLabel: string }) => a.actorLabel.startsWith(stack.admin.email);
    const audit = (await stack.client.listAudit({ action: 'connection.update' })).filter(own);
    expect(audit.map((a) => [a.target, a.details])).toEqual([
      ['hook', { 'header X-Api-Key': 'cleared' }],
      ['cache', { password: 'cleared' }],
      ['cache', { url: { from: 'redis://127.0.0.1:6379/0', to: 'redis://127.0.0.1:6379/1' }, username: { from: 'default', to: null } }],
      ['local-nats-2', { name: { from: 'local-nats', to: 'local-nats-2' } }],
    ]);
    expect((await stack.client.listAudit({ action: 'connection.create' })).filter(own).map((a) => a.target)).toEqual(['hook', 'cache', 'local-nats']);
  });

  it('a pipeline names only connections there are, of the kind its settings take: else 422 naming the vertex', async () => {
    const missing = await send('operator', 'POST', '/pipelines', { name: `orders-missing-${stack.prefix}`, graph: natsSource('no-such-nats') });
    expect(missing.status).toBe(422);
    expect(missing.json.issues).toEqual([
      {
        path: ['vertices', 0, 'settings', 'connection'],
        vertexId: 'orders',
        message: "orders: there is no connection named 'no-such-nats' (an admin makes one under Connections)",
      },
    ]);
    const wrongKind = await send('operator', 'POST', '/pipelines/validate', { graph: natsSource('cache') });
    expect(wrongKind.status).toBe(422);
    expect(wrongKind.json.message).toContain("orders: connection 'cache' is a redis connection; a NATS JetStream source needs a nats one");
  });

  it('is not deleted (409) nor renamed while a pipeline or an active job names it', async () => {
    const nats = await create({ name: 'orders-nats', kind: 'nats', url: 'nats://127.0.0.1:4222' });
    const name = `orders-${stack.prefix}`;
    const pipeline = await stack.client.createPipeline({ name, graph: natsSource('orders-nats') });
    expect((await stack.client.getConnection(nats.id)).usedBy).toEqual([name]);

    const held = await send('admin', 'DELETE', `/connections/${nats.id}`);
    expect(held.status).toBe(409);
    expect(held.json.message).toBe(`connection 'orders-nats' is used by pipeline '${name}': change them to another connection first`);
    const rename = await send('admin', 'PUT', `/connections/${nats.id}`, { name: 'renamed', kind: 'nats', url: 'nats://127.0.0.1:4222' });
    expect(rename.status).toBe(409);
    expect(rename.json.message).toContain('keeps its name and kind');

    // A job (no workers: it stays SCHEDULING) holds it though the pipeline's latest version no longer names it.
    const job = await stack.client.deployJob({ pipelineId: pipeline.id });
    await stack.client.createVersion(pipeline.id, generatorOnly);
    const byJob = await send('admin', 'DELETE', `/connections/${nats.id}`);
    expect(byJob.status).toBe(409);
    expect(byJob.json.message).toBe(
      `connection 'orders-nats' is used by an active job ${job.id} (of '${name}'): change them to another connection first`,
    );

    await stack.client.cancelJob(job.id);
    await waitFor(async () => (await stack.client.getJob(job.id)).endedAt, 20_000, 'the job to end');
    expect((await send('admin', 'DELETE', `/connections/${nats.id}`)).status).toBe(200);
    // Gone since the version was saved: deploying it again is refused, naming it.
    const again = await send('operator', 'POST', '/jobs', { pipelineId: pipeline.id, version: 1 });
    expect(again.status).toBe(422);
    expect(again.json.message).toBe(
      "version 1 cannot run: orders: there is no connection named 'orders-nats' (an admin makes one under Connections)",
    );
  });

  it('tests NATS: reached and signed in, the stream and subject there or not, refused credentials, nobody there', async () => {
    const local = await create({ name: 'nats-4222', kind: 'nats', url: 'nats://127.0.0.1:4222' });
    const ok = await test(local.id);
    expect(ok).toMatchObject({ ok: true, message: expect.stringMatching(/^connected to 127\.0\.0\.1:4222 \(NATS \d/) });
    expect(ok.latencyMs).toBeGreaterThanOrEqual(0);
    expect(await test(local.id, { stream: 'KF_NO_SUCH_STREAM' })).toEqual({
      ok: false,
      message: "reached 127.0.0.1:4222 and signed in, but JetStream has no stream 'KF_NO_SUCH_STREAM'",
      latencyMs: expect.any(Number),
    });
    expect((await test(local.id, { subject: 'kf.nobody.listens' })).message).toContain("no JetStream stream captures subject 'kf.nobody.listens'");

    const closed = await freePort();
    const nobody = await create({ name: 'nats-closed', kind: 'nats', url: `nats://127.0.0.1:${closed}` });
    expect(await test(nobody.id)).toMatchObject({ ok: false, message: `cannot reach 127.0.0.1:${closed}: connection refused (ECONNREFUSED)` });

    const secured = await serverWithPassword('nats-server', (port) => [
      '-a',
      '127.0.0.1',
      '-p',
      String(port),
      '--user',
      'app',
      '--pass',
      NATS_PASSWORD,
      '-js',
      '-sd',
      natsDir,
    ]);
    servers.push(secured);
    const url = `nats://127.0.0.1:${secured.port}`;
    const wrong = await create({ name: 'nats-wrong', kind: 'nats', url, username: 'app', password: WRONG });
    expect(await test(wrong.id)).toMatchObject({
      ok: false,
      message: `reached 127.0.0.1:${secured.port} but authentication failed: Authorization Violation`,
    });
    const right = await create({ name: 'nats-right', kind: 'nats', url, username: 'app', password: NATS_PASSWORD });
    expect(await test(right.id)).toMatchObject({ ok: true, message: expect.stringContaining(`connected to 127.0.0.1:${secured.port}`) });
  });

  it('tests Redis, Postgres, MQTT and HTTP the same way', async () => {
    const secured = await serverWithPassword('redis-server', (port) => [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--requirepass',
      REDIS_PASSWORD,
      '--save',
      '',
    ]);
    servers.push(secured);
    const wrong = await create({ name: 'redis-wrong', kind: 'redis', url: `redis://127.0.0.1:${secured.port}`, password: WRONG });
    expect(await test(wrong.id)).toMatchObject({
      ok: false,
      message: `reached 127.0.0.1:${secured.port} but authentication failed: WRONGPASS invalid username-password pair or user is disabled.`,
    });
    const right = await create({ name: 'redis-right', kind: 'redis', url: `redis://127.0.0.1:${secured.port}`, password: REDIS_PASSWORD });
    expect(await test(right.id)).toMatchObject({ ok: true, message: 'connected to Redis (PONG)' });
    const local = await create({ name: 'redis-local', kind: 'redis', url: 'redis://127.0.0.1:6379' });
    const key = `${stack.prefix}:orders`;
    await stack.redis.xadd(key, '*', 'data', '{}');
    expect(await test(local.id, { stream: key })).toMatchObject({ ok: true, message: `connected to Redis (PONG); stream '${key}' holds 1 entries` });
    expect((await test(local.id, { stream: `${key}:none` })).message).toBe(`reached 127.0.0.1:6379 and signed in, but there is no key '${key}:none'`);

    const db = new URL(process.env.DATABASE_URL!);
    const pg = await create({ name: 'pg', kind: 'postgres', url: `postgresql://${db.host}${db.pathname}`, username: 'postgres' });
    expect(await test(pg.id)).toMatchObject({ ok: true, message: expect.stringMatching(/^connected to database '.+' as 'postgres' \(PostgreSQL /) });
    expect((await test(pg.id, { publication: 'kf_no_such_pub' })).message).toContain("has no publication 'kf_no_such_pub'");
    const pgClosed = await freePort();
    const nowhere = await create({ name: 'pg-closed', kind: 'postgres', url: `postgresql://127.0.0.1:${pgClosed}/app` });
    expect((await test(nowhere.id)).message).toBe(`cannot reach 127.0.0.1:${pgClosed}: connection refused (ECONNREFUSED)`);

    const mqtt = await create({ name: 'mqtt-local', kind: 'mqtt', url: 'mqtt://127.0.0.1:1883' });
    expect(await test(mqtt.id, { topic: 'kf/test/#' })).toMatchObject({
      ok: true,
      message: "connected to the MQTT broker; may subscribe to 'kf/test/#'",
    });

    const livez = await create({ name: 'control', kind: 'http', url: `${stack.url}/livez`, secretHeaders: { Authorization: `Bearer ${HEADER}` } });
    expect(await test(livez.id)).toMatchObject({ ok: true, message: 'the server answered HEAD with HTTP 200 OK' });
    const api = await create({ name: 'control-api', kind: 'http', url: `${stack.url}/api/me` });
    expect((await test(api.id)).message).toBe(`reached ${new URL(stack.url).host} but authentication failed: HTTP 401 Unauthorized`);
  });

  it('a host that takes the connection but never answers is unreachable once the test runs out of time', async () => {
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      for (const kind of ['nats', 'redis', 'postgres', 'mqtt', 'http'] as const) {
        const scheme = kind === 'postgres' ? 'postgresql' : kind;
        const result = await probeConnection({ name: 'silent', kind, url: `${scheme}://127.0.0.1:${port}` }, {}, 300);
        expect([kind, result.ok, result.message]).toEqual([kind, false, `cannot reach 127.0.0.1:${port}: no answer within 0.3 s`]);
      }
    } finally {
      silent.close();
    }
  });

  it('no secret is in any answer or log line, though the control plane logged every request', () => {
    const logged = logs.join('');
    expect(logged).toContain('"msg":"incoming request"');
    expect(answers.length).toBeGreaterThan(30);
    for (const secret of SECRETS) {
      expect(logged.includes(secret), `${secret} in the log`).toBe(false);
      expect(
        answers.filter((a) => a.includes(secret)).map((a) => a.slice(0, 60)),
        `${secret} in an answer`,
      ).toEqual([]);
    }
  });
});

describe('connections without KEYFLOW_SECRET_KEY', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ workers: 0, env: { KEYFLOW_SECRET_KEY: '' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('are stored without secrets; one with a password is refused, saying why', async () => {
    const client = createKeyflowClient(stack.url, { token: stack.token });
    const plain = await client.createConnection({ name: 'plain-mqtt', kind: 'mqtt', url: 'mqtt://127.0.0.1:1883' });
    expect(plain.hasPassword).toBe(false);
    const res = await fetch(`${stack.url}/api/connections`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'with-password', kind: 'mqtt', url: 'mqtt://127.0.0.1:1883', username: 'u', password: 'p' }),
    });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { message: string }).message).toMatch(/^KEYFLOW_SECRET_KEY is not set: secrets cannot be stored/);
  });
});
