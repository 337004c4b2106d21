import { randomUUID } from 'node:crypto';
import { connectKeyflowSocket, createKeyflowClient, type Role } from '@keyflow/api';
import type { GraphInput } from '@keyflow/core';
import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loopbackSpellings } from '../src/control.ts';
import { startStack, waitFor, type Stack } from './harness.ts';

const graph: GraphInput = {
  vertices: [
    { id: 'events', type: 'generator', parallelism: 1, settings: { rate: 200, keys: 20 } },
    { id: 'count', type: 'count', parallelism: 1 },
    { id: 'log', type: 'log', parallelism: 1 },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'log', partitioning: 'forward' },
  ],
};

/**
 * Who may call each route: `open` needs no credentials. The test fails when a route exists that this table does not
 * name (or the other way round), so a new route cannot land without its rule being written down here.
 */
const POLICY: Record<string, Role | 'open'> = {
  'GET /metrics': 'viewer',
  'GET /livez': 'open',
  'GET /readyz': 'open',
  'GET /api/health': 'open',
  'GET /api/auth/*': 'open',
  'POST /api/auth/*': 'open',
  'GET /api/me': 'viewer',
  'GET /api/users': 'admin',
  'POST /api/users': 'admin',
  'PATCH /api/users/:id': 'admin',
  'DELETE /api/users/:id': 'admin',
  'GET /api/api-keys': 'admin',
  'POST /api/api-keys': 'admin',
  'DELETE /api/api-keys/:id': 'admin',
  'GET /api/audit': 'admin',
  'GET /api/connections': 'viewer',
  'POST /api/connections': 'admin',
  'GET /api/connections/:id': 'viewer',
  'PUT /api/connections/:id': 'admin',
  'DELETE /api/connections/:id': 'admin',
  'POST /api/connections/:id/test': 'operator',
  'GET /api/workers': 'viewer',
  'GET /api/operators': 'viewer',
  'GET /api/pipelines': 'viewer',
  'POST /api/pipelines/validate': 'operator',
  'POST /api/pipelines': 'operator',
  'GET /api/pipelines/:id': 'viewer',
  'POST /api/pipelines/:id/versions': 'operator',
  'PATCH /api/pipelines/:id': 'operator',
  'DELETE /api/pipelines/:id': 'operator',
  'GET /api/jobs': 'viewer',
  'POST /api/jobs': 'operator',
  'GET /api/jobs/:id': 'viewer',
  'PATCH /api/jobs/:id': 'operator',
  'GET /api/jobs/:id/key-groups': 'viewer',
  'GET /api/jobs/:id/scaling': 'viewer',
  'POST /api/jobs/:id/stop': 'operator',
  'POST /api/jobs/:id/cancel': 'operator',
  'GET /api/jobs/:id/checkpoints': 'viewer',
  'POST /api/jobs/:id/checkpoints': 'operator',
  'POST /api/jobs/:id/savepoints': 'operator',
  'DELETE /api/checkpoints/:id': 'operator',
  'GET /api/jobs/:id/recoveries': 'viewer',
  'GET /api/jobs/:id/vertices/:vertexId/sample': 'viewer',
  'GET /api/jobs/:id/vertices/:vertexId/dead-letters': 'viewer',
  'GET /api/jobs/:id/vertices/:vertexId/late': 'viewer',
  'POST /api/ingest/:sourceName': 'operator',
};

/** A concrete path for a route template: ids nobody has, so an allowed request does nothing (404 or 400). */
const concrete = (url: string) =>
  url
    .replace('/api/auth/*', '/api/auth/get-session')
    .replace('/checkpoints/:id', '/checkpoints/2147480000')
    .replace('/users/:id', '/users/nobody')
    .replace('/api-keys/:id', '/api-keys/nokey')
    .replace(':id', randomUUID())
    .replace(':vertexId', 'count')
    .replace(':sourceName', 'no-such-source');

const ORIGIN = 'http://127.0.0.1:3000';

describe('allowed origins by default', () => {
  it('are the dashboard’s, in every loopback spelling when it runs on this machine', () => {
    expect(loopbackSpellings('http://127.0.0.1:3000')).toEqual(['http://127.0.0.1:3000', 'http://localhost:3000', 'http://[::1]:3000']);
    expect(loopbackSpellings('http://localhost')).toEqual(['http://127.0.0.1', 'http://localhost', 'http://[::1]']);
    expect(loopbackSpellings('https://keyflow.example.com/')).toEqual(['https://keyflow.example.com']);
  });
});

describe('who may do what', () => {
  let stack: Stack;
  const keys: Record<Role, string> = { viewer: '', operator: '', admin: '' };
  const as = (role: Role) => createKeyflowClient(stack.url, { token: keys[role] });
  const send = (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) =>
    fetch(`${stack.url}${path}`, {
      method,
      headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

  /** Signs in like the dashboard's browser does (through the dashboard's origin) and returns the session cookie. */
  const signIn = async (email: string, password: string, extra: Record<string, string> = {}) => {
    const res = await send('POST', '/api/auth/sign-in/email', { origin: ORIGIN, ...extra }, { email, password });
    const cookie = res.headers
      .getSetCookie()
      .map((c) => c.split(';')[0]!)
      .join('; ');
    return { status: res.status, cookie, body: await res.text() };
  };

  beforeAll(async () => {
    stack = await startStack({ workers: 1, env: { KEYFLOW_DASHBOARD_URL: ORIGIN, KEYFLOW_SIGNIN_PER_MINUTE: '3' } });
    for (const role of ['viewer', 'operator'] as const)
      keys[role] = (await stack.client.createApiKey({ name: `${role} key`, role, expiresInDays: 1 })).key;
    keys.admin = stack.token;
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('guards every route: 401 without credentials, 403 below its role, through at or above it', async () => {
    const registered = stack.control.routes.map((r) => `${r.method} ${r.url}`).sort();
    expect(registered).toEqual(Object.keys(POLICY).sort());
    const refused: string[] = [];
    for (const [route, needed] of Object.entries(POLICY)) {
      const [method, url] = route.split(' ') as [string, string];
      const path = concrete(url);
      const body = method === 'GET' ? undefined : {};
      const anonymous = await send(method, path, {}, body);
      if (needed === 'open') {
        expect(anonymous.status, route).toBeLessThan(500);
        expect([401, 403], route).not.toContain(anonymous.status);
        continue;
      }
      expect(anonymous.status, `${route} without credentials`).toBe(401);
      expect(await anonymous.json()).toMatchObject({ error: 'unauthorized', message: expect.stringContaining('sign in') });
      for (const role of ['viewer', 'operator', 'admin'] as const) {
        const res = await send(method, path, bearer(keys[role]), body);
        const allowed = role === needed || role === 'admin' || (role === 'operator' && needed === 'viewer');
        if (allowed && [401, 403].includes(res.status)) refused.push(`${route} as ${role}: ${res.status} ${await res.text()}`);
        if (!allowed) {
          expect(res.status, `${route} as ${role}`).toBe(403);
          expect(((await res.json()) as { message: string }).message).toContain(`needs the ${needed} role; you are a`);
        }
        expect(res.status, `${route} as ${role}`).toBeLessThan(500);
      }
    }
    expect(refused).toEqual([]);
  });

  it('refuses an expired, revoked, malformed or made-up key with 401, and a key never does more than its owner may now', async () => {
    const admin = as('admin');
    const short = await admin.createApiKey({ name: 'soon expired', role: 'operator', expiresInDays: 1 });
    expect((await send('GET', '/api/jobs', bearer(short.key))).status).toBe(200);
    await stack.prisma.apikey.update({ where: { id: short.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const expired = await send('GET', '/api/jobs', bearer(short.key));
    expect(expired.status).toBe(401);
    expect(((await expired.json()) as { message: string }).message).toMatch(/expired|not valid/);

    const revoked = await admin.createApiKey({ name: 'to revoke', role: 'viewer', expiresInDays: 30 });
    expect((await send('GET', '/api/jobs', bearer(revoked.key))).status).toBe(200);
    await admin.revokeApiKey(revoked.id);
    expect((await send('GET', '/api/jobs', bearer(revoked.key))).status).toBe(401);
    expect((await admin.listApiKeys()).some((k) => k.id === revoked.id)).toBe(false);

    for (const header of ['Bearer kf_madeup', 'Basic dXNlcjpwYXNz', 'Bearer', `Bearer ${keys.viewer} extra`]) {
      const res = await send('GET', '/api/jobs', { authorization: header });
      expect(res.status, header).toBe(401);
    }

    // An admin's admin key, once the admin is an operator, acts as an operator.
    const alice = await admin.createUser({ email: `alice-${stack.prefix}@keyflow.test`, password: 'correct horse battery', role: 'admin' });
    const aliceCookie = (await signIn(alice.email, 'correct horse battery')).cookie;
    const aliceKey = await send(
      'POST',
      '/api/api-keys',
      { cookie: aliceCookie, origin: ORIGIN },
      { name: 'alice admin key', role: 'admin', expiresInDays: 2 },
    );
    expect(aliceKey.status).toBe(201);
    const { key } = (await aliceKey.json()) as { key: string };
    expect((await send('GET', '/api/users', bearer(key))).status).toBe(200);
    await admin.updateUser(alice.id, { role: 'operator' });
    expect((await send('GET', '/api/users', bearer(key))).status).toBe(403);
    expect(((await send('GET', '/api/me', bearer(key)).then((r) => r.json())) as { role: string }).role).toBe('operator');
    // Her sessions and keys end with her.
    await admin.deleteUser(alice.id);
    expect((await send('GET', '/api/jobs', bearer(key))).status).toBe(401);
    expect((await send('GET', '/api/me', { cookie: aliceCookie })).status).toBe(401);
    // A viewer cannot mint a key above itself, even an admin cannot give a key more than it has.
    expect((await send('POST', '/api/api-keys', bearer(keys.viewer), { name: 'x', role: 'viewer', expiresInDays: 1 })).status).toBe(403);
  });

  it('signs in with a session cookie, refuses changes from other origins or without JSON, and signs out', async () => {
    const password = 'a long operator password';
    const bob = await as('admin').createUser({ email: `Bob-${stack.prefix}@Keyflow.test`, name: 'Bob', password, role: 'operator' });
    expect(bob.email).toBe(bob.email.toLowerCase());
    const wrong = await signIn(bob.email, 'not his password', { 'x-forwarded-for': '203.0.113.7' });
    expect(wrong.status).toBe(401);
    expect(wrong.cookie).toBe('');
    const ok = await signIn(bob.email, password, { 'x-forwarded-for': '203.0.113.8' });
    expect(ok.status).toBe(200);
    expect(ok.cookie).toMatch(/session_token=/);
    const cookie = ok.cookie;

    const me = await send('GET', '/api/me', { cookie });
    expect(await me.json()).toEqual({ user: { id: bob.id, email: bob.email, name: 'Bob' }, role: 'operator', via: 'session', apiKey: null });

    const p = await as('operator').createPipeline({ name: `auth-${stack.prefix}`, graph });
    const job = await as('operator').deployJob({ pipelineId: p.id });
    await waitFor(async () => (await as('viewer').getJob(job.id)).state === 'RUNNING', 30_000, 'the job to run');
    // From the dashboard's origin, as JSON: done.
    const savepoint = await send('POST', `/api/jobs/${job.id}/checkpoints`, { cookie, origin: ORIGIN }, {});
    expect([202, 409], await savepoint.clone().text()).toContain(savepoint.status);
    // From another origin, or with no Origin, or not as JSON: refused before anything is done.
    const before = (await as('viewer').listCheckpoints(job.id)).length;
    for (const [headers, status] of [
      [{ cookie, origin: 'https://evil.example' }, 403],
      [{ cookie }, 403],
      [{ cookie, origin: ORIGIN, 'content-type': 'text/plain' }, 415],
    ] as const) {
      for (const path of [
        `/api/jobs/${job.id}/stop`,
        `/api/jobs/${job.id}/cancel`,
        `/api/jobs/${job.id}/checkpoints`,
        `/api/jobs/${job.id}/savepoints`,
      ]) {
        const res = await fetch(`${stack.url}${path}`, { method: 'POST', headers, body: headers['content-type'] ? 'x' : undefined });
        expect(res.status, `${path} ${JSON.stringify(headers)}`).toBe(status);
      }
    }
    const after = await as('viewer').getJob(job.id);
    expect(after.state).toBe('RUNNING');
    expect((await as('viewer').listCheckpoints(job.id)).length).toBe(before);

    // The trail names who did it, with the session's email.
    const trail = (await as('viewer').getJob(job.id)).audit;
    expect(trail.map((a) => [a.action, a.actorLabel])).toEqual([
      ['job.deploy', expect.stringContaining('(key operator key)')],
      ...(savepoint.status === 202 ? [['checkpoint.trigger', bob.email]] : []),
    ]);

    const out = await send('POST', '/api/auth/sign-out', { cookie, origin: ORIGIN }, {});
    expect(out.status).toBe(200);
    expect((await send('GET', '/api/me', { cookie })).status).toBe(401);
    await as('operator').cancelJob(job.id);
  });

  it('limits sign-in attempts per client address and per account; a client cannot choose its own address', async () => {
    const emails = [1, 2, 3, 4, 5].map((i) => `carol${i}-${stack.prefix}@keyflow.test`);
    for (const email of emails) await as('admin').createUser({ email, password: 'carols long password', role: 'viewer' });
    // A header of the control plane's own naming the address is ignored; X-Forwarded-For counts (from a trusted proxy).
    const from = (ip: string) => ({ 'x-forwarded-for': ip, 'x-keyflow-client-ip': randomUUID() });
    const perAddress: number[] = [];
    for (const email of emails.slice(0, 4)) perAddress.push((await signIn(email, 'a wrong password', from('198.51.100.1'))).status);
    expect(perAddress).toEqual([401, 401, 401, 429]);
    expect((await signIn(emails[0]!, 'carols long password', from('198.51.100.1'))).status).toBe(429);
    expect((await signIn(emails[0]!, 'carols long password', from('198.51.100.2'))).status).toBe(200);

    // One account from ever new addresses: held up all the same, even with the right password.
    const perAccount: number[] = [];
    for (const ip of ['198.51.100.3', '198.51.100.4', '198.51.100.5', '198.51.100.6'])
      perAccount.push((await signIn(emails[4]!, 'a wrong password', from(ip))).status);
    expect(perAccount).toEqual([401, 401, 401, 429]);
    const held = await send(
      'POST',
      '/api/auth/sign-in/email',
      { origin: ORIGIN, ...from('198.51.100.7') },
      { email: emails[4], password: 'carols long password' },
    );
    expect(held.status).toBe(429);
    expect(Number(held.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await held.json()) as { message: string }).message).toMatch(/too many sign-in attempts for this account: try again in \d+ s/);
  });

  it('keeps users sane: password rules, no self-demotion, the last admin stays, and changes land in the audit trail', async () => {
    const admin = as('admin');
    const bad = await send('POST', '/api/users', bearer(keys.admin), { email: 'x@keyflow.test', password: 'short', role: 'viewer' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toContain('at least 12 characters');
    expect(
      (await send('POST', '/api/users', bearer(keys.admin), { email: 'not an email', password: 'long enough password', role: 'viewer' })).status,
    ).toBe(400);
    expect(
      (await send('POST', '/api/users', bearer(keys.admin), { email: 'y@keyflow.test', password: 'long enough password', role: 'root' })).status,
    ).toBe(400);
    const dave = await admin.createUser({ email: `dave-${stack.prefix}@keyflow.test`, password: 'daves long password', role: 'viewer' });
    expect(
      (await send('POST', '/api/users', bearer(keys.admin), { email: dave.email, password: 'daves long password', role: 'viewer' })).status,
    ).toBe(409);

    // The stack's admin may not demote or delete itself.
    const self = await send('PATCH', `/api/users/${stack.admin.id}`, bearer(keys.admin), { role: 'viewer' });
    expect(self.status).toBe(409);
    expect((await send('DELETE', `/api/users/${stack.admin.id}`, bearer(keys.admin))).status).toBe(409);

    // A password reset signs the user out.
    const session = (await signIn(dave.email, 'daves long password', { 'x-forwarded-for': '192.0.2.10' })).cookie;
    expect((await send('GET', '/api/me', { cookie: session })).status).toBe(200);
    await admin.updateUser(dave.id, { password: 'daves new long password', role: 'operator' });
    expect((await send('GET', '/api/me', { cookie: session })).status).toBe(401);

    const users = await admin.listUsers();
    expect(users.find((u) => u.id === dave.id)?.role).toBe('operator');
    const trail = await admin.listAudit({ limit: 50 });
    const daves = trail.filter((a) => a.target === dave.email).map((a) => [a.action, a.details]);
    expect(daves).toEqual([
      ['user.update', { role: { from: 'viewer', to: 'operator' }, passwordReset: true }],
      ['user.create', { role: 'viewer' }],
    ]);
    expect(trail.find((a) => a.action === 'apikey.create' && a.target === 'viewer key')?.actorLabel).toBe(
      `${stack.admin.email} (key tests ${stack.prefix})`,
    );
    // Paging: older than the newest entry.
    const older = await admin.listAudit({ before: trail[0]!.id, limit: 1 });
    expect(older[0]!.id).toBe(trail[1]!.id);
  });

  it('records who deployed, rescaled (from → to), took and deleted a savepoint, stopped: on the job and on the audit page', async () => {
    const operator = as('operator');
    const p = await operator.createPipeline({ name: `audit-${stack.prefix}`, graph });
    const job = await operator.deployJob({ pipelineId: p.id, checkpointIntervalMs: 60_000 });
    await waitFor(async () => (await operator.getJob(job.id)).state === 'RUNNING', 30_000, 'the job to run');
    await operator.rescaleJob(job.id, { parallelism: { count: 2 } });
    const savepoint = await waitFor(() => operator.triggerSavepoint(job.id).catch(() => undefined), 30_000, 'a savepoint to be taken');
    await waitFor(
      async () => (await operator.listCheckpoints(job.id)).find((c) => c.id === savepoint.id && c.status !== 'PENDING'),
      30_000,
      'the savepoint to complete',
    );
    await operator.deleteSavepoint(savepoint.id);
    await operator.stopJob(job.id);
    const trail = (await operator.getJob(job.id)).audit;
    expect(trail.map((a) => a.action)).toEqual(['job.deploy', 'job.rescale', 'savepoint.trigger', 'savepoint.delete', 'job.stop']);
    expect(trail.every((a) => a.actorLabel.endsWith('(key operator key)'))).toBe(true);
    expect(trail[1]!.details).toEqual({ vertexId: 'count', from: 1, to: 2 });
    expect(trail[2]!.target).toBe(`#${savepoint.number}`);
    // The audit page is the admin's alone.
    const forJob = await as('admin').listAudit({ jobId: job.id });
    expect(forJob.map((a) => a.action)).toEqual(['job.stop', 'savepoint.delete', 'savepoint.trigger', 'job.rescale', 'job.deploy']);
    expect((await send('GET', `/api/audit?jobId=${job.id}`, bearer(keys.operator))).status).toBe(403);
  });

  describe('the socket', () => {
    const connect = (opts: { token?: string; origin?: string; cookie?: string }) =>
      new Promise<{ ok: true; socket: ReturnType<typeof io> } | { ok: false; message: string }>((resolve) => {
        const socket = io(stack.url, {
          path: '/socket.io',
          transports: ['websocket'],
          reconnection: false,
          ...(opts.token && { auth: { token: opts.token } }),
          extraHeaders: { ...(opts.origin && { origin: opts.origin }), ...(opts.cookie && { cookie: opts.cookie }) },
        });
        socket.on('connect', () => resolve({ ok: true, socket }));
        socket.on('connect_error', (err) => {
          socket.close();
          resolve({ ok: false, message: err.message });
        });
      });

    it('refuses a handshake without credentials, with a bad key or from another origin', async () => {
      expect(await connect({})).toEqual({ ok: false, message: 'unauthorized' });
      expect(await connect({ token: 'kf_madeup' })).toEqual({ ok: false, message: 'unauthorized' });
      const foreign = await connect({ token: keys.viewer, origin: 'https://evil.example' });
      expect(foreign.ok).toBe(false);
      const fromDashboard = await connect({ token: keys.viewer, origin: ORIGIN });
      expect(fromDashboard.ok).toBe(true);
      if (fromDashboard.ok) fromDashboard.socket.close();
    });

    it('follows a session cookie, and closes the socket of a user who is deleted', async () => {
      const email = `frank-${stack.prefix}@keyflow.test`;
      const frank = await as('admin').createUser({ email, password: 'franks long password', role: 'viewer' });
      const { cookie } = await signIn(email, 'franks long password', { 'x-forwarded-for': '192.0.2.44' });
      expect((await connect({ cookie, origin: 'https://evil.example' })).ok).toBe(false);
      const viaDashboard = await connect({ cookie, origin: ORIGIN });
      expect(viaDashboard.ok).toBe(true);
      if (!viaDashboard.ok) return;
      const closed = new Promise<string>((resolve) => viaDashboard.socket.on('disconnect', (reason) => resolve(reason)));
      await as('admin').deleteUser(frank.id);
      expect(await closed).toBe('io server disconnect');
      expect(await connect({ cookie, origin: ORIGIN })).toEqual({ ok: false, message: 'unauthorized' });
    });

    it('lets a viewer follow a job that exists, and nothing else', async () => {
      const p = await as('operator').createPipeline({ name: `socket-auth-${stack.prefix}`, graph });
      const job = await as('operator').deployJob({ pipelineId: p.id });
      const viewer = connectKeyflowSocket(stack.url, keys.viewer);
      try {
        await waitFor(() => viewer.connected, 10_000, 'the viewer to connect');
        const join = (id: unknown) => viewer.timeout(5000).emitWithAck('job:subscribe', id as string);
        expect(await join(job.id)).toBe(true);
        expect(await join(randomUUID())).toBe(false);
        expect(await join('../../etc')).toBe(false);
        const states: string[] = [];
        viewer.on('job:state', (e) => states.push(e.to));
        await as('operator').cancelJob(job.id);
        await waitFor(() => states.includes('CANCELED'), 15_000, 'the viewer to see the cancel');
      } finally {
        viewer.close();
      }
    });
  });
});
