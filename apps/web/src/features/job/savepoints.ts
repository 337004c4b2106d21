import type { Checkpoint } from '@keyflow/api';

// Savepoints and retained checkpoints on the job page: what a new job of the pipeline can start from.

/**
 * The checkpoints a new job can start from, newest first: the completed ones the control plane still keeps (every
 * savepoint until it is deleted, the newest others until retention removes them), and savepoints being taken.
 */
export function retainedCheckpoints<C extends Checkpoint>(list: readonly C[]): C[] {
  return list.filter((c) => c.status === 'COMPLETED' || (c.kind === 'SAVEPOINT' && c.status === 'PENDING')).sort((a, b) => b.number - a.number);
}

/** A checkpoint as the page names it: "savepoint #7", "checkpoint #6". */
export const checkpointName = (c: Pick<Checkpoint, 'kind' | 'number'>) => `${c.kind === 'SAVEPOINT' ? 'savepoint' : 'checkpoint'} #${c.number}`;
