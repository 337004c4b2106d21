import type { ScalingEvent, WorkerInfo } from '@keyflow/api';

// What a rescale asks of the worker pool: one slot per subtask of the operator's chain (its chain moves together).

/** Slots no subtask uses, over the whole pool. */
export const freeSlots = (workers: readonly Pick<WorkerInfo, 'slots' | 'usedSlots'>[]) =>
  workers.reduce((n, w) => n + Math.max(0, w.slots - w.usedSlots), 0);

export interface SlotFit {
  /** New slots the rescale takes: p′ − p for a chain at p going to p′, none for a scale-down. */
  needed: number;
  free: number;
  /** Whether the pool can give them now; if not, the rescale waits for slots and rolls back when none free up. */
  fits: boolean;
}

/** What rescaling a chain that runs at `current` to `next` needs from a pool with `free` slots. */
export function slotFit(current: number, next: number, free: number): SlotFit {
  const needed = Math.max(0, next - current);
  return { needed, free, fits: needed <= free };
}

/**
 * Slots a rescale of the chain under way already holds: its new subtasks run (the pool counts them used) while the
 * plan still shows the old parallelism.
 */
export function heldSlots(e: Pick<ScalingEvent, 'status' | 'subtasksStartedAt' | 'toParallelism'> | undefined, current: number): number {
  return e?.status === 'ALIGNING' && e.subtasksStartedAt !== null ? Math.max(0, e.toParallelism - current) : 0;
}
