import { MAX_GENERATOR_KEYS, UPPER_BOUND_MAX_PARALLELISM } from '@keyflow/core';
import { secretKeyProblem } from '@keyflow/db';
import { z } from 'zod';

/** KEYFLOW_SECRET_KEY, as the control plane and the workers take it: unset (or empty), or a usable key. */
const secretKeySetting = z.preprocess(
  (v) => (v === '' ? undefined : v),
  z
    .string()
    .superRefine((text, ctx) => {
      const problem = secretKeyProblem(text);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
);

/** The control plane's configuration, validated once at start. */
export const controlEnv = z.object({
  DATABASE_URL: z.string().url(),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  KEYFLOW_PREFIX: z.string().min(1).default('kf'),
  CONTROL_HOST: z.string().default('127.0.0.1'),
  CONTROL_PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  /**
   * User operators (@keyflow/sdk): comma-separated folders, module files or package names; relative paths are
   * relative to the process's working directory. The control plane and every worker must name the same code.
   */
  KEYFLOW_OPERATORS: z.string().optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  // Who may do what.
  /** Signs session cookies; at least 32 characters (e.g. `openssl rand -base64 32`). `npm run up` makes one in .keyflow/. */
  KEYFLOW_AUTH_SECRET: z
    .string({ error: 'KEYFLOW_AUTH_SECRET is required: a secret of at least 32 characters that signs session cookies' })
    .min(32, 'KEYFLOW_AUTH_SECRET has at least 32 characters'),
  /**
   * Seals connections' secrets (passwords, tokens, secret headers) in Postgres: 32 random bytes as hex or base64 (e.g.
   * `openssl rand -base64 32`), or a passphrase of at least 16 characters. Workers need the same. `npm run up` makes
   * one in .keyflow/. Unset: connections with secrets cannot be stored.
   */
  KEYFLOW_SECRET_KEY: secretKeySetting,
  /** The dashboard's origin, where browsers reach `/api` (it proxies to this control plane). */
  KEYFLOW_DASHBOARD_URL: z
    .url()
    .default('http://127.0.0.1:3000')
    .transform((u) => new URL(u).origin),
  /** Origins whose browser requests and sockets are accepted, comma-separated; default: the dashboard's origin. */
  KEYFLOW_ALLOWED_ORIGINS: z
    .string()
    .optional()
    .transform((v) =>
      v
        ? v
            .split(',')
            .map((o) => o.trim())
            .filter(Boolean)
        : undefined,
    ),
  /** The first admin, made at start when no admin exists; without a password one is generated and logged once. */
  KEYFLOW_ADMIN_EMAIL: z.email().optional(),
  KEYFLOW_ADMIN_PASSWORD: z.string().optional(),
  /** Sign-in attempts per client address per minute. */
  KEYFLOW_SIGNIN_PER_MINUTE: z.coerce.number().int().min(1).default(10),
  /** Proxies whose X-Forwarded-For names the client (Fastify's trustProxy: addresses, CIDRs, `loopback`). */
  KEYFLOW_TRUSTED_PROXIES: z.string().default('loopback'),
  /** Completed periodic checkpoints kept per job; savepoints are never removed by retention. */
  CHECKPOINT_RETENTION: z.coerce.number().int().min(1).default(3),
  /** Restarts allowed per job within RESTART_WINDOW_MS before it fails for good. */
  MAX_RESTARTS: z.coerce.number().int().min(0).default(3),
  RESTART_WINDOW_MS: z.coerce.number().int().min(1000).default(600_000),
  /** A RUNNING job's subtask that no worker's heartbeat (every 500 ms) has listed for this long is lost, and the job recovers. */
  HEARTBEAT_TIMEOUT_MS: z.coerce.number().int().min(500).default(2500),
  /** How long a rescale waits for free worker slots before it is rolled back. */
  RESCALE_SLOT_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
  /** How long rescaled subtasks may take to load the state handed to them, counted from the rescale checkpoint's completion. */
  RESCALE_RESTORE_TIMEOUT_MS: z.coerce.number().int().min(100).default(60_000),
  /** A running job with work waiting that makes no progress for this long is shown as stalled, naming who holds it up. */
  STALL_WARN_MS: z.coerce.number().int().min(500).default(2000),
  /** … and fails over after this long (well under the checkpoint timeout, so a stuck job is not left for minutes). */
  STALL_TIMEOUT_MS: z.coerce.number().int().min(1000).default(15_000),
  /** A deployed or recovering job whose subtasks have not all started this long after they were queued is shown as stalled… */
  START_WARN_MS: z.coerce.number().int().min(500).default(10_000),
  /** … and fails over after this long (its restarts count against MAX_RESTARTS, so it ends FAILED, naming them). */
  START_TIMEOUT_MS: z.coerce.number().int().min(1000).default(120_000),

  // Isolated sinks and quotas.
  /**
   * The database Postgres sinks write to, as a restricted role of their own (see ensureSinkRole in @keyflow/db); the
   * control plane settles ended jobs' sinks through it. Unset (or empty): DATABASE_URL, with a warning.
   */
  KEYFLOW_SINK_DATABASE_URL: z.preprocess((v) => (v === '' ? undefined : v), z.string().url().optional()),
  /** The most subtasks (worker slots) one job may ask for, at deploy and by rescale. */
  KEYFLOW_MAX_SUBTASKS_PER_JOB: z.coerce.number().int().min(1).default(256),
  /** The most parallelism one operator may ask for (never more than its maxParallelism, at most 32768). */
  KEYFLOW_MAX_PARALLELISM: z.coerce.number().int().min(1).max(UPPER_BOUND_MAX_PARALLELISM).default(128),
  /** The most distinct keys a generator source may draw from. */
  KEYFLOW_MAX_GENERATOR_KEYS: z.coerce.number().int().min(1).max(MAX_GENERATOR_KEYS).default(MAX_GENERATOR_KEYS),
  /** The largest body one POST to /api/ingest/<source> may have, in bytes (413 above). */
  KEYFLOW_INGEST_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(1024 ** 3)
    .default(10 * 1024 * 1024),
  /** The most records one POST to /api/ingest/<source> may hold (413 above): each request is one Redis script, which blocks Redis while it runs. */
  KEYFLOW_INGEST_MAX_RECORDS: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
});

export type ControlEnv = z.infer<typeof controlEnv>;
