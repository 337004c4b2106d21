import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createKeyflowClient, isTerminal, type JobState, type KeyflowClient } from '@keyflow/api';
import { EventGenerator, type GeneratorConfig, type GraphInput } from '@keyflow/core';
import { createPrisma, type PrismaClient } from '@keyflow/db';
import { Redis } from 'ioredis';
import pg from 'pg';
import { expect } from 'vitest';
import { startControl, type ControlHandle } from '../src/control.ts';
import { controlEnv } from '../src/env.ts';
import { SYSTEM_ACTOR } from '../src/auth/audit.ts';

/** Signs the tests' session cookies: any 32 characters will do. */
export const TEST_AUTH_SECRET = 'keyflow-tests-secret-0123456789abcdef';
/** Seals the tests' connection secrets (KEYFLOW_SECRET_KEY): 32 bytes as hex, the same for the control plane and its workers. */
export const TEST_SECRET_KEY = '4b6579666c6f772074657374732720636f6e6e656374696f6e20736563726574';

const workerDir = fileURLToPath(new URL('../../worker', import.meta.url));

export interface Stack {
  /** The control plane's URL; it changes when the control plane restarts. */
  readonly url: string;
  prefix: string;
  /** A client of the current control plane, with the stack's admin API key. */
  readonly client: KeyflowClient;
  /** The stack's admin API key (`Authorization: Bearer …`), for requests made without the client. */
  token: string;
  /** The stack's admin: a user of its own, who owns `token`. */
  admin: { id: string; email: string; password: string };
  readonly control: ControlHandle;
  prisma: PrismaClient;
  redis: Redis;
  workers: ChildProcess[];
  /** Starts one more worker process, with `extra` on top of the stack's environment and Node.js arguments. */
  addWorker(name?: string, extra?: { env?: Record<string, string>; nodeArgs?: string[] }): Promise<ChildProcess>;
  /**
   * Closes the control plane and, `downMs` later, starts a new one on the same environment and prefix, as a redeploy
   * would; `env` goes on top of the stack's environment (a redeploy that changed a setting).
   */
  restartControl(downMs?: number, env?: Record<string, string>): Promise<void>;
  close(): Promise<void>;
}

/**
 * A whole Keyflow on the test run's Postgres and Redis: the control plane in this process and worker
 * processes as real child processes. Each stack gets its own Redis key prefix.
 */
export interface StackOptions {
  workers?: number;
  slots?: number;
  /** Extra environment for the control plane and the workers. */
  env?: Record<string, string>;
  /** Extra environment for the workers only (on top of `env`). */
  workerEnv?: Record<string, string>;
  /** Extra Node.js arguments for worker processes (e.g. --cpu-prof). */
  workerNodeArgs?: string[];
  /** Takes every line the control plane logs (its level: `env.LOG_LEVEL`), instead of the test's output. */
  controlLog?: (line: string) => void;
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const prefix = `${process.env.KEYFLOW_PREFIX ?? 'kft'}-${randomBytes(3).toString('hex')}`;
  // The control plane logs into the test's output: warnings and errors only, unless KEYFLOW_TEST_LOGS asks for all.
  const logLevel = process.env.LOG_LEVEL ?? (process.env.KEYFLOW_TEST_LOGS ? 'info' : 'warn');
  const rawEnv = {
    ...process.env,
    KEYFLOW_AUTH_SECRET: process.env.KEYFLOW_AUTH_SECRET ?? TEST_AUTH_SECRET,
    KEYFLOW_SECRET_KEY: process.env.KEYFLOW_SECRET_KEY ?? TEST_SECRET_KEY,
    LOG_LEVEL: logLevel,
    KEYFLOW_PREFIX: prefix,
    CONTROL_PORT: '0',
    ...opts.env,
  };
  const env = controlEnv.parse(rawEnv);
  const controlOpts = opts.controlLog ? { logStream: { write: opts.controlLog } } : {};
  let control = await startControl(env, controlOpts);
  // Every stack has its own admin and key: the stacks of a test run share one database.
  const admin = { email: `admin-${prefix}@keyflow.test`, password: `pw-${randomBytes(12).toString('hex')}` };
  const adminUser = await control.accounts.createUser({ ...admin, role: 'admin' }, SYSTEM_ACTOR);
  const adminPrincipal = {
    kind: 'user',
    userId: adminUser.id,
    email: admin.email,
    name: adminUser.name,
    role: 'admin',
    apiKey: null,
    label: admin.email,
  } as const;
  const { key: token } = await control.accounts.createApiKey({ name: `tests ${prefix}`, role: 'admin', expiresInDays: 1 }, adminPrincipal);
  let client = createKeyflowClient(control.url, { token });
  const prisma = createPrisma(env.DATABASE_URL);
  const redis = new Redis(env.REDIS_URL, { maxRetriesPerRequest: null });
  // A test may take Redis away on purpose; ioredis reconnects by itself, and its commands wait for it.
  redis.on('error', () => {});
  const workers: ChildProcess[] = [];
  const logs: string[] = [];

  const addWorker = async (name = `worker-${workers.length + 1}`, extra: { env?: Record<string, string>; nodeArgs?: string[] } = {}) => {
    const child = spawn(process.execPath, [...(opts.workerNodeArgs ?? []), ...(extra.nodeArgs ?? []), '--import', 'tsx', 'src/main.ts'], {
      cwd: workerDir,
      env: {
        ...process.env,
        KEYFLOW_SECRET_KEY: process.env.KEYFLOW_SECRET_KEY ?? TEST_SECRET_KEY,
        ...opts.env,
        ...opts.workerEnv,
        WORKER_SLOTS: String(opts.slots ?? 4),
        ...extra.env,
        KEYFLOW_PREFIX: prefix,
        WORKER_NAME: name,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (b: Buffer) => {
      // KEYFLOW_TEST_LOGS=1 shows the workers' logs as they come (to see why a test waits in vain).
      if (process.env.KEYFLOW_TEST_LOGS) process.stderr.write(`[${name}] ${b}`);
      logs.push(`[${name}] ${b}`);
      if (logs.length > 200) logs.shift();
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    workers.push(child);
    await waitFor(async () => (await redis.sismember(`${prefix}:workers`, name)) === 1, 30_000, `worker ${name} to start`).catch((err) => {
      throw new Error(`${(err as Error).message}; its output:\n${logs.join('')}`);
    });
    return child;
  };
  try {
    for (let i = 0; i < (opts.workers ?? 2); i++) await addWorker();
  } catch (err) {
    // No stack to close comes back: leave no worker process or control plane behind.
    for (const w of workers) w.kill('SIGKILL');
    await control.close();
    redis.disconnect();
    await prisma.$disconnect();
    throw err;
  }

  return {
    get url() {
      return control.url;
    },
    prefix,
    get client() {
      return client;
    },
    get control() {
      return control;
    },
    token,
    admin: { id: adminUser.id, ...admin },
    prisma,
    redis,
    workers,
    addWorker,
    async restartControl(downMs = 0, extra?: Record<string, string>) {
      await control.close();
      await new Promise((r) => setTimeout(r, downMs));
      control = await startControl(extra ? controlEnv.parse({ ...rawEnv, ...extra }) : env, controlOpts);
      client = createKeyflowClient(control.url, { token });
    },
    async close() {
      await Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((resolve) => {
              if (w.exitCode !== null || w.signalCode !== null) return resolve();
              w.once('exit', () => resolve());
              w.kill('SIGTERM');
              setTimeout(() => w.kill('SIGKILL'), 10_000).unref();
            }),
        ),
      );
      await control.close();
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.unlink(...keys);
      redis.disconnect();
      await prisma.$disconnect();
    },
  };
}

/** Polls `check` (every `pollMs`) until it returns a truthy value or the deadline passes; the message says what was awaited. */
export async function waitFor<T>(
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs: number,
  what: string,
  pollMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * Where a job stands, for a wait's error: its state, latest lifecycle events, checkpoints with their failure reasons, and
 * the worker pool, so that a slow start is told apart from a stuck one.
 */
async function whereItStands(stack: Pick<Stack, 'client'>, jobId: string): Promise<string> {
  const [job, checkpoints, workers] = await Promise.all([
    stack.client.getJob(jobId).catch((e: Error) => e.message),
    stack.client.listCheckpoints(jobId).catch((e: Error) => e.message),
    stack.client.listWorkers().catch((e: Error) => e.message),
  ]);
  return JSON.stringify({
    job: typeof job === 'string' ? job : { state: job.state, attempt: job.attempt, failureReason: job.failureReason, events: job.events.slice(-5) },
    checkpoints:
      typeof checkpoints === 'string'
        ? checkpoints
        : checkpoints.slice(0, 5).map((c) => `${c.number} ${c.status} ${c.acknowledged}/${c.totalSubtasks} ${c.failureReason ?? ''}`),
    workers,
  });
}

/** Runs a wait on a job; when it throws, the error also says where the job stands. */
async function explained<T>(stack: Pick<Stack, 'client'>, jobId: string, wait: Promise<T>): Promise<T> {
  try {
    return await wait;
  } catch (err) {
    throw new Error(`${(err as Error).message}; where it stands: ${await whereItStands(stack, jobId)}`, { cause: err });
  }
}

/** Waits until a job has a completed checkpoint (checkpoint `id`, when given) and returns it; on timeout the error says where the job stands. */
export function waitForCheckpoint(stack: Pick<Stack, 'client'>, jobId: string, timeoutMs = 90_000, id?: number) {
  return explained(
    stack,
    jobId,
    waitFor(
      async () => (await stack.client.listCheckpoints(jobId)).find((c) => c.status === 'COMPLETED' && (id === undefined || c.id === id)),
      timeoutMs,
      id === undefined ? `a completed checkpoint of job ${jobId}` : `checkpoint ${id} of job ${jobId} to complete`,
    ),
  );
}

/**
 * Waits until a job is in `state` and returns it. A job that ends in another state fails the wait at once, with its
 * reason, instead of at the deadline; either way the error says where the job stands.
 */
export function waitForState(stack: Pick<Stack, 'client'>, jobId: string, state: JobState, timeoutMs = 30_000) {
  return explained(
    stack,
    jobId,
    waitFor(
      async () => {
        const j = await stack.client.getJob(jobId);
        if (j.state === state) return j;
        if (isTerminal(j.state)) throw new Error(`job ${jobId} is ${j.state}, not ${state}: ${j.failureReason ?? 'no reason given'}`);
        return undefined;
      },
      timeoutMs,
      `job ${jobId} to be ${state}`,
    ),
  );
}

/** Kills (SIGKILL) a worker process that runs a subtask of the job (of `vertexId`, when given); returns it as the pool lists it. */
export async function killWorkerRunning(stack: Pick<Stack, 'client' | 'workers'>, jobId: string, vertexId?: string) {
  // A worker killed earlier stays listed until its heartbeat expires: only a process still running counts.
  const alive = (pid: number) => stack.workers.some((c) => c.pid === pid && !c.killed && c.exitCode === null);
  const victim = (await stack.client.listWorkers()).find(
    (w) => alive(w.pid) && w.subtasks.some((s) => s.jobId === jobId && (vertexId === undefined || s.vertexId === vertexId)),
  );
  if (!victim) throw new Error(`no live worker runs a subtask of job ${jobId}${vertexId === undefined ? '' : ` (${vertexId})`}`);
  stack.workers.find((w) => w.pid === victim.pid)!.kill('SIGKILL');
  return victim;
}

/** Waits until a job ends FINISHED; fails at once if it ends FAILED or CANCELED instead. */
export async function waitForFinished(stack: Pick<Stack, 'client'>, jobId: string, timeoutMs: number) {
  return waitFor(
    async () => {
      const j = await stack.client.getJob(jobId);
      if (j.state === 'FAILED' || j.state === 'CANCELED') throw new Error(`job ${j.state}: ${j.failureReason}`);
      return j.state === 'FINISHED' && j;
    },
    timeoutMs,
    `job ${jobId} to finish`,
  );
}

/** Waits until a job has recovered (RECOVERING → RUNNING) and returns it; a request the control plane fails (Postgres away) is retried. */
export async function waitForRecovered(stack: Stack, jobId: string, timeoutMs: number) {
  return waitFor(
    async () => {
      const j = await stack.client.getJob(jobId).catch(() => undefined);
      return j?.events.some((e) => e.fromState === 'RECOVERING' && e.toState === 'RUNNING') && j;
    },
    timeoutMs,
    `job ${jobId} to recover`,
  );
}

/** Every user's count over all events of a bounded generator, computed without the engine. */
export function generatorCounts(settings: Omit<GeneratorConfig, 'zipfExponent'> & { zipfExponent?: number; total: number }): Map<string, number> {
  const gen = new EventGenerator({ zipfExponent: 1, ...settings });
  const counts = new Map<string, number>();
  for (let i = 0; i < settings.total; i++) {
    const user = gen.eventAt(i).user;
    counts.set(user, (counts.get(user) ?? 0) + 1);
  }
  return counts;
}

/** A postgres sink's table as key → numeric value (read as the sinks' role: the table is in its schema). */
export async function tableCounts(table: string): Promise<Map<string, number>> {
  const client = new pg.Client({ connectionString: process.env.KEYFLOW_SINK_DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ key: string; value: number }>(`SELECT key, value FROM "${table}"`);
    return new Map(rows.map((r) => [r.key, Number(r.value)]));
  } finally {
    await client.end();
  }
}

/** A generator's settings as a pipeline gives them: bounded (`total`) or not, paced by `rate`. */
export type GeneratorSettings = Omit<GeneratorConfig, 'zipfExponent' | 'total'> & { zipfExponent?: number; total?: number; rate?: number };
type CountedGenerator = GeneratorSettings & { total: number };

/**
 * The pipeline the failure tests run: a bounded generator → keyBy(user) → count (p=2) → a postgres sink (p=2, the
 * default exactly-once unless `sink` says otherwise) writing each user's count into `table`.
 */
export function countPipeline(table: string, settings: GeneratorSettings, sink: Record<string, unknown> = {}): GraphInput {
  return {
    vertices: [
      { id: 'events', type: 'generator', parallelism: 1, settings },
      { id: 'count', type: 'count', parallelism: 2 },
      { id: 'sink', type: 'postgres', parallelism: 2, settings: { table, valueField: 'count', ...sink } },
    ],
    edges: [
      { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
      { from: 'count', to: 'sink', partitioning: 'forward' },
    ],
  };
}

/** Every user's count in `table` equals the independent computation over the generator's events: no loss, no duplicate. */
export async function expectExactCounts(table: string, settings: CountedGenerator): Promise<void> {
  const expected = generatorCounts(settings);
  const actual = await tableCounts(table);
  expect(actual.size).toBe(expected.size);
  const wrong = [...expected].filter(([k, n]) => actual.get(k) !== n).map(([key, n]) => ({ key, expected: n, actual: actual.get(key) }));
  expect(wrong.slice(0, 10), `${wrong.length} keys have a wrong count`).toEqual([]);
}
