// A whole Keyflow for the browser tests: a fresh database, its own Redis key prefix, the control plane on a
// free port, two workers (started again when they die), the dashboard built (once per change) and served on
// a free port, and three users (admin, operator, viewer) with passwords made for this run.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createMigratedDatabase, createSinkRole, dropDatabase, uniqueDatabaseName } from '@keyflow/db/testing';
import { deleteKeys } from '../scripts/lib/redis.mjs';
import { E2E_DIST_DIR, ensureWebBuild, webStartCommand } from '../scripts/lib/web.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const LOG_DIR = join(ROOT, '.keyflow', 'logs');

/**
 * Failure detection as the browser tests need it: a stuck subtask (a frozen worker) is failed over by the stall
 * detector after 8 s, well before the heartbeat check (15 s) or BullMQ's task lock (60 s) would notice, so the stall
 * banner shows first; a killed worker is noticed by the same stall detector. A rescale waits 15 s for free slots.
 */
const CONTROL_ENV = { STALL_WARN_MS: '2000', STALL_TIMEOUT_MS: '8000', HEARTBEAT_TIMEOUT_MS: '15000', RESCALE_SLOT_TIMEOUT_MS: '15000' };
const WORKER_ENV = { WORKER_LOCK_MS: '60000' };

export type E2eRole = 'admin' | 'operator' | 'viewer';
export type E2eUsers = Record<E2eRole, { email: string; password: string }>;

export interface E2eStack {
  webUrl: string;
  controlUrl: string;
  /** Where Postgres sinks write (through their restricted role): the tests read a sink's table there. */
  sinkDatabaseUrl: string;
  /** Who may sign in, one user per role; the tests read them from KEYFLOW_E2E_USERS. */
  users: E2eUsers;
  stop(): Promise<void>;
}

/** A password of this run only: long enough for the control plane's rule, and never in the repository. */
const password = () => `e2e-${randomBytes(12).toString('base64url')}`;

/**
 * Signs in at the control plane itself (as the dashboard's origin, the only one it lets change anything with a
 * session) and answers the session cookie, for the requests that set the stack up.
 */
async function signIn(controlUrl: string, origin: string, user: { email: string; password: string }): Promise<string> {
  const res = await fetch(`${controlUrl}/api/auth/sign-in/email`, {
    method: 'POST',
    headers: { origin, 'content-type': 'application/json' },
    body: JSON.stringify(user),
  });
  if (!res.ok) throw new Error(`could not sign in as ${user.email}: ${res.status} ${await res.text()}`);
  return res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
}

async function createUser(controlUrl: string, origin: string, cookie: string, user: { email: string; password: string; role: E2eRole }) {
  const res = await fetch(`${controlUrl}/api/users`, {
    method: 'POST',
    headers: { origin, cookie, 'content-type': 'application/json' },
    body: JSON.stringify({ ...user, name: `e2e ${user.role}` }),
  });
  if (res.status !== 201) throw new Error(`could not create the ${user.role} ${user.email}: ${res.status} ${await res.text()}`);
}

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

interface Service {
  name: string;
  child: ChildProcess;
  recent: string[];
  /** Set once the stack stops: a supervised service is not started again after that. */
  stopping?: boolean;
}

/**
 * Starts `command` in its own process group, its output kept in .keyflow/logs/e2e-<name>.log. A supervised
 * service is started again whenever it exits before the stack stops, as a process manager would restart it: a
 * test can kill a worker to watch a job recover, and the pool is whole again for the tests after it.
 */
function start(name: string, command: string, args: string[], cwd: string, env: Record<string, string>, supervised = false): Service {
  mkdirSync(LOG_DIR, { recursive: true });
  const log = createWriteStream(join(LOG_DIR, `e2e-${name}.log`));
  const recent: string[] = [];
  const launch = () => {
    const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    for (const stream of [child.stdout!, child.stderr!])
      stream.on('data', (chunk: Buffer) => {
        log.write(chunk);
        recent.push(...chunk.toString().split('\n').filter(Boolean));
        recent.splice(0, Math.max(0, recent.length - 30));
      });
    child.on('exit', (code, signal) => {
      if (!supervised || service.stopping) return void log.end();
      log.write(`[e2e] ${name} exited (${signal ?? `exit code ${code}`}): starting it again\n`);
      setTimeout(() => {
        if (!service.stopping) service.child = launch();
      }, 500);
    });
    return child;
  };
  const service: Service = { name, child: launch(), recent };
  return service;
}

async function stopService(s: Service): Promise<void> {
  s.stopping = true;
  if (s.child.exitCode !== null || s.child.signalCode !== null || !s.child.pid) return;
  const exited = new Promise((resolve) => s.child.once('exit', resolve));
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-s.child.pid!, sig);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  const timer = setTimeout(() => signal('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function waitUntil(what: string, service: Service, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (service.child.exitCode !== null) break;
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not come up; last lines of ${service.name}:\n${service.recent.join('\n')}`);
}

const answers = (url: string) => async () => (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok;

export async function startE2eStack(log: (line: string) => void = console.log): Promise<E2eStack> {
  const server = process.env.TEST_DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres';
  const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  const prefix = `kfe2e-${randomBytes(4).toString('hex')}`;
  const services: Service[] = [];
  let databaseUrl: string | undefined;

  const stop = async () => {
    for (const s of services.reverse()) await stopService(s);
    if (databaseUrl) await dropDatabase(databaseUrl).catch((e: Error) => log(`could not drop ${databaseUrl}: ${e.message}`));
    await deleteKeys(redisUrl, [`${prefix}*`, `{${prefix}}*`]).catch((e: Error) => log(`could not delete Redis keys ${prefix}*: ${e.message}`));
  };

  try {
    // The build is the slow part; the database and the engine start meanwhile.
    const build = ensureWebBuild({ distDir: E2E_DIST_DIR, log, onOutput: () => {} });
    databaseUrl = await createMigratedDatabase(server, uniqueDatabaseName());
    const sinkDatabaseUrl = await createSinkRole(databaseUrl);
    const env = {
      DATABASE_URL: databaseUrl,
      // Sinks write through their own restricted role, as `npm run up` and docker compose set them up.
      KEYFLOW_SINK_DATABASE_URL: sinkDatabaseUrl,
      REDIS_URL: redisUrl,
      KEYFLOW_PREFIX: prefix,
      // Connections' secrets: sealed by the control plane, opened by the workers with the same key.
      KEYFLOW_SECRET_KEY: randomBytes(32).toString('hex'),
      // The example user operators (@keyflow/sdk): the control plane and every worker load the same code.
      KEYFLOW_OPERATORS: join(ROOT, 'examples', 'operators'),
      LOG_LEVEL: 'warn',
    };
    const controlPort = await freePort();
    const controlUrl = `http://127.0.0.1:${controlPort}`;
    // The dashboard's origin is the one the control plane lets change things with a session: known before it starts.
    const webPort = await freePort();
    const webUrl = `http://127.0.0.1:${webPort}`;
    const users: E2eUsers = {
      admin: { email: 'admin@e2e.keyflow.dev', password: password() },
      operator: { email: 'operator@e2e.keyflow.dev', password: password() },
      viewer: { email: 'viewer@e2e.keyflow.dev', password: password() },
    };
    const tsx = ['--import', 'tsx', 'src/main.ts'];
    const control = start('control', process.execPath, tsx, join(ROOT, 'apps', 'control'), {
      ...env,
      ...CONTROL_ENV,
      CONTROL_PORT: String(controlPort),
      KEYFLOW_AUTH_SECRET: randomBytes(32).toString('hex'),
      KEYFLOW_DASHBOARD_URL: webUrl,
      KEYFLOW_ADMIN_EMAIL: users.admin.email,
      KEYFLOW_ADMIN_PASSWORD: users.admin.password,
      // Every test signs in from 127.0.0.1: the limit per address is the production one's business, not theirs.
      KEYFLOW_SIGNIN_PER_MINUTE: '600',
    });
    services.push(control);
    for (const name of ['worker-1', 'worker-2'])
      services.push(
        start(name, process.execPath, tsx, join(ROOT, 'apps', 'worker'), { ...env, ...WORKER_ENV, WORKER_NAME: name, WORKER_SLOTS: '4' }, true),
      );
    await waitUntil('the control plane', control, answers(`${controlUrl}/api/health`), 60_000);
    const admin = await signIn(controlUrl, webUrl, users.admin);
    for (const role of ['operator', 'viewer'] as const) await createUser(controlUrl, webUrl, admin, { ...users[role], role });
    await waitUntil(
      'two workers',
      control,
      async () => ((await (await fetch(`${controlUrl}/api/workers`, { headers: { cookie: admin } })).json()) as unknown[]).length === 2,
      60_000,
    );

    await build;
    const cmd = webStartCommand({ port: webPort, controlUrl, distDir: E2E_DIST_DIR });
    const web = start('web', cmd.command, cmd.args, cmd.cwd, cmd.env);
    services.push(web);
    await waitUntil('the dashboard', web, answers(`${webUrl}/api/health`), 60_000);
    log(`stack up: dashboard ${webUrl}, control ${controlUrl}, database ${new URL(databaseUrl).pathname.slice(1)}, prefix ${prefix}`);
    return { webUrl, controlUrl, sinkDatabaseUrl, users, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
