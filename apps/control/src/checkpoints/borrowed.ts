import { TERMINAL_STATES } from '@keyflow/api';
import type { PrismaClient } from '@keyflow/db';

/**
 * Of the checkpoints `ids`, those that a live job was started from and would restart from if it failed now: it has
 * no completed checkpoint of its own yet. Their state must stay, whatever their own job's retention says (a job
 * started from a running job's retained checkpoint, or from a savepoint): without it, that job would recover from
 * nothing, its sources back at their start.
 */
export async function borrowedCheckpoints(db: Pick<PrismaClient, 'job'>, ids: readonly number[]): Promise<Map<number, string>> {
  if (ids.length === 0) return new Map();
  const jobs = await db.job.findMany({
    where: { restoredFromId: { in: [...ids] }, state: { notIn: [...TERMINAL_STATES] }, checkpoints: { none: { status: 'COMPLETED' } } },
    select: { id: true, restoredFromId: true },
  });
  return new Map(jobs.map((j) => [j.restoredFromId!, j.id]));
}
