import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { secretKeyProblem } from '@keyflow/db';
import { z } from 'zod';

/** The worker's configuration, validated once at start. */
export const workerEnv = z.object({
  DATABASE_URL: z.string().url(),
  /**
   * The database Postgres sinks write to, as a restricted role of their own (see ensureSinkRole in @keyflow/db).
   * Unset (or empty): DATABASE_URL, with a warning, for that lets a pipeline reach Keyflow's own tables.
   */
  KEYFLOW_SINK_DATABASE_URL: z.preprocess((v) => (v === '' ? undefined : v), z.string().url().optional()),
  /**
   * Opens connections' secrets (passwords, tokens) that the control plane sealed: the control plane's own
   * KEYFLOW_SECRET_KEY. Unset (or empty): connectors whose connection has a secret fail, naming it.
   */
  KEYFLOW_SECRET_KEY: z.preprocess(
    (v) => (v === '' ? undefined : v),
    z
      .string()
      .superRefine((text, ctx) => {
        const problem = secretKeyProblem(text);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
  ),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  KEYFLOW_PREFIX: z.string().min(1).default('kf'),
  WORKER_SLOTS: z.coerce.number().int().min(1).max(256).default(4),
  /**
   * Unique across the pool. The default adds random bits to host name and pid: containers on several hosts often
   * share both (the same image's host name, pid 1).
   */
  WORKER_NAME: z
    .string()
    .min(1)
    .default(`${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`),
  /** How long a task job's lock lasts without renewal; a dead worker's subtasks are seen as stalled after it. */
  WORKER_LOCK_MS: z.coerce.number().int().min(1000).default(10_000),
  /** How often the worker reports itself and its subtasks; the control plane's HEARTBEAT_TIMEOUT_MS must be several of these. */
  WORKER_HEARTBEAT_MS: z.coerce.number().int().min(100).max(10_000).default(500),
  /** How long the worker's main thread may be unresponsive before it stops heartbeating and counts as lost. */
  WORKER_STUCK_MS: z.coerce.number().int().min(1000).default(30_000),
  /** Records per channel entry. */
  KEYFLOW_BATCH_SIZE: z.coerce.number().int().min(1).max(100_000).default(4096),
  /** Entries a channel holds before its producer waits (backpressure). */
  KEYFLOW_CHANNEL_BOUND: z.coerce.number().int().min(2).max(100_000).default(32),
  /**
   * The data a channel holds, in milliseconds of its consumer's work (buffer debloating): a slow consumer's channel
   * holds less than KEYFLOW_CHANNEL_BOUND, so a checkpoint's barrier waits behind about this much. 0: the fixed bound.
   */
  KEYFLOW_CHANNEL_DEBLOAT_MS: z.coerce.number().int().min(0).max(600_000).default(1000),
  /** Channel entries a producer has on their way to Redis at once (1: wait for each reply before the next). */
  KEYFLOW_CHANNEL_IN_FLIGHT: z.coerce.number().int().min(1).max(64).default(8),
  /** How long a partial batch may wait before it is sent (Flink's buffer timeout). */
  KEYFLOW_LINGER_MS: z.coerce.number().int().min(0).max(10_000).default(5),
  /** The least level the worker logs (pino's levels). */
  /**
   * User operators (@keyflow/sdk): comma-separated folders, module files or package names; relative paths are
   * relative to the process's working directory. The control plane and every worker must name the same code.
   */
  KEYFLOW_OPERATORS: z.string().optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type WorkerEnv = z.infer<typeof workerEnv>;
