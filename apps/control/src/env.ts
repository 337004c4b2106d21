import { z } from 'zod';

/** The control plane's configuration, validated once at start. */
export const controlEnv = z.object({
  DATABASE_URL: z.string().url(),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  KEYFLOW_PREFIX: z.string().min(1).default('kf'),
  CONTROL_HOST: z.string().default('127.0.0.1'),
  CONTROL_PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
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
});

export type ControlEnv = z.infer<typeof controlEnv>;
