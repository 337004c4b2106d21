import type { Checkpoint, CheckpointCounts as ServerCounts } from '@keyflow/api';

/** The most rows GET /jobs/:id/checkpoints returns, newest first. */
export const HISTORY_LIMIT = 100;

export interface CheckpointCounts {
  /** Every checkpoint the job took a number for (numbers count up per job, one per trigger). */
  triggered: number;
  inProgress: number;
  /** Completed ones: still kept, let go by retention (DISCARDED) and savepoints deleted since (their rows are gone). */
  completed: number;
  failed: number;
  /** Older ones the history no longer lists, when the control plane's own counts are not at hand. */
  unlisted: number;
}

/**
 * Flink's checkpoint counts from the history: the highest number is how many were triggered, and a number
 * missing from a complete history is a savepoint deleted by hand (only completed ones can be).
 */
export function checkpointCounts(history: readonly Pick<Checkpoint, 'number' | 'status'>[], server?: ServerCounts): CheckpointCounts {
  // Past what the history lists, the control plane's counts (kept live from the checkpoint events) are the truth.
  if (server && history.length >= HISTORY_LIMIT) {
    const { triggered, inProgress, completed, failed } = server;
    return { triggered, inProgress, completed, failed, unlisted: 0 };
  }
  if (history.length === 0) return { triggered: 0, inProgress: 0, completed: 0, failed: 0, unlisted: 0 };
  const numbers = history.map((c) => c.number);
  const triggered = Math.max(...numbers);
  const inProgress = history.filter((c) => c.status === 'PENDING').length;
  const failed = history.filter((c) => c.status === 'FAILED').length;
  const unlisted = history.length >= HISTORY_LIMIT ? Math.min(...numbers) - 1 : 0;
  return { triggered, inProgress, completed: triggered - inProgress - failed - unlisted, failed, unlisted };
}
