import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createMigratedDatabase, dropDatabase, uniqueDatabaseName } from '@keyflow/db/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_AUTH_SECRET, waitFor } from './harness.ts';

const controlDir = fileURLToPath(new URL('..', import.meta.url));
const ORIGIN = 'http://127.0.0.1:3000';

/** `npm run up`'s first-run step (apps/control/src/firstRun.ts) on `databaseUrl`, as `npm run up` runs it. */
const firstRun = (databaseUrl: string, keyFile: string) =>
  new Promise<{ admin: { created: boolean; email?: string; password?: string; generated?: boolean }; apiKey?: string }>((resolve, reject) =>
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/firstRun.ts'],
      { cwd: controlDir, env: { ...process.env, DATABASE_URL: databaseUrl, KEYFLOW_AUTH_SECRET: TEST_AUTH_SECRET, KEYFLOW_KEY_FILE: keyFile } },
      (error, stdout, stderr) => (error ? reject(new Error(stderr || error.message)) : resolve(JSON.parse(stdout.trim().split('\n').at(-1)!))),
    ),
  );

/**
 * The first run on a database of its own, then a control plane as its own process logging everything (trace),
 * through sign-ins, users, keys and sign-out: no password, key, hash, session token or the auth secret ever shows
 * in an answer or a log line.
 */
describe('secrets', () => {
  let databaseUrl: string;
  let control: ChildProcess | undefined;
  const output: string[] = [];

  beforeAll(async () => {
    databaseUrl = await createMigratedDatabase(
      process.env.TEST_DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres',
      uniqueDatabaseName(),
    );
  });
  afterAll(async () => {
    control?.kill('SIGKILL');
    await dropDatabase(databaseUrl);
  });

  it('the first run makes one admin with a generated password and a CLI key, once; nothing secret is ever said', async () => {
    const keyFile = join(mkdtempSync(join(tmpdir(), 'kf-key-')), 'api-key');
    const first = await firstRun(databaseUrl, keyFile);
    expect(first.admin).toMatchObject({ created: true, email: 'admin@keyflow.local', generated: true });
    expect(first.admin.password).toMatch(/^\S{20,}$/);
    expect(first.apiKey).toMatch(/^kf_\w{20,}$/);
    writeFileSync(keyFile, `${first.apiKey}\n`);
    // Again: the admin exists and the stored key works, so nothing new is made or shown.
    expect(await firstRun(databaseUrl, keyFile)).toEqual({ admin: { created: false } });

    control = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: controlDir,
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl,
        KEYFLOW_AUTH_SECRET: TEST_AUTH_SECRET,
        KEYFLOW_DASHBOARD_URL: ORIGIN,
        KEYFLOW_PREFIX: `kfsec-${Date.now()}`,
        CONTROL_PORT: '0',
        LOG_LEVEL: 'trace',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    control.stdout!.on('data', (b: Buffer) => output.push(b.toString()));
    control.stderr!.on('data', (b: Buffer) => output.push(b.toString()));
    const url = await waitFor(() => /"url":"(http:[^"]+)"/.exec(output.join(''))?.[1], 30_000, 'the control plane to listen');

    const answers: string[] = [];
    const call = async (method: string, path: string, headers: Record<string, string>, body?: unknown) => {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { ...headers, ...(body !== undefined && { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      answers.push(`${method} ${path} ${res.status} ${JSON.stringify([...res.headers])} ${text}`);
      return { res, text };
    };
    const key = { authorization: `Bearer ${first.apiKey}` };
    const browser = { origin: ORIGIN };

    expect((await call('GET', '/api/me', key)).res.status).toBe(200);
    expect((await call('POST', '/api/auth/sign-in/email', browser, { email: first.admin.email, password: 'a wrong password!' })).res.status).toBe(
      401,
    );
    const signIn = await call('POST', '/api/auth/sign-in/email', browser, { email: first.admin.email, password: first.admin.password });
    expect(signIn.res.status).toBe(200);
    const cookie = signIn.res.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    const session = { ...browser, cookie };
    const userPassword = 'erins very own password';
    const erin = await call('POST', '/api/users', session, { email: 'erin@keyflow.test', password: userPassword, role: 'operator' });
    expect(erin.res.status).toBe(201);
    const erinId = (JSON.parse(erin.text) as { id: string }).id;
    expect((await call('POST', '/api/auth/sign-in/email', browser, { email: 'erin@keyflow.test', password: userPassword })).res.status).toBe(200);
    const newPassword = 'erins reset long password';
    expect((await call('PATCH', `/api/users/${erinId}`, session, { password: newPassword })).res.status).toBe(200);
    const made = await call('POST', '/api/api-keys', session, { name: 'ci', role: 'viewer', expiresInDays: 7 });
    expect(made.res.status).toBe(201);
    const ciKey = (JSON.parse(made.text) as { key: string }).key;
    expect((await call('GET', '/api/jobs', { authorization: `Bearer ${ciKey}` })).res.status).toBe(200);
    expect((await call('GET', '/api/jobs', { authorization: `Bearer ${ciKey}x` })).res.status).toBe(401);
    for (const path of ['/api/users', '/api/api-keys', '/api/audit', '/api/me']) expect((await call('GET', path, session)).res.status).toBe(200);
    expect((await call('POST', '/api/auth/sign-out', session, {})).res.status).toBe(200);

    // Everything secret there is, read back from the database.
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    const hashes = (await db.query<{ password: string }>(`SELECT password FROM account WHERE password IS NOT NULL`)).rows.map((r) => r.password);
    const keyHashes = (await db.query<{ key: string }>(`SELECT key FROM apikey`)).rows.map((r) => r.key);
    const tokens = (await db.query<{ token: string }>(`SELECT token FROM session`)).rows.map((r) => r.token);
    await db.end();
    expect(hashes.length).toBe(2);
    expect(keyHashes.length).toBe(2);

    const logged = output.join('');
    expect(logged).toContain('"msg":"incoming request"'); // the log was at trace: it saw every request
    const secrets: [string, string][] = [
      ['the admin password', first.admin.password!],
      ['a user password', userPassword],
      ['a reset password', newPassword],
      ['the auth secret', TEST_AUTH_SECRET],
      ...[first.apiKey!, ciKey].map((k): [string, string] => ['an API key', k]),
      ...hashes.map((h): [string, string] => ['a password hash', h]),
      ...keyHashes.map((h): [string, string] => ['an API key hash', h]),
    ];
    for (const [what, secret] of secrets) {
      expect(logged.includes(secret), `${what} in the log`).toBe(false);
      // The new key is in the one answer that creates it, and nowhere else.
      const inAnswers = answers.filter((a) => a.includes(secret));
      expect(
        inAnswers.map((a) => a.slice(0, 40)),
        `${what} in answers`,
      ).toEqual(secret === ciKey ? [expect.stringContaining('POST /api/api-keys 201')] : []);
    }
    for (const token of tokens) {
      expect(logged.includes(token), 'a session token in the log').toBe(false);
      // Only in the httpOnly cookie, where no page script reads it (the answers' headers hold the Set-Cookie).
      expect(answers.filter((a) => a.includes(token) && !a.includes('httponly') && !a.includes('HttpOnly'))).toEqual([]);
    }
    expect(JSON.parse(signIn.text)).not.toHaveProperty('token');
    expect(answers.filter((a) => /"password"\s*:/.test(a))).toEqual([]);
    expect(readFileSync(keyFile, 'utf8').trim()).toBe(first.apiKey);
  });
});
