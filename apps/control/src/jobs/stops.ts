import type { WorkerEvent } from '@keyflow/runtime';
import { subtaskKey, type ActiveJob } from './activeJob.ts';

type Stopped = Extract<WorkerEvent, { type: 'stopped' }>;

/**
 * Whether a subtask's stop is one the plan makes: a stop with savepoint, a rescale taking it away (the rescale in
 * flight, or one the plan already shows), or a rolled-back rescale's new subtask. Anything else is a failure.
 */
export function plannedStop(job: ActiveJob, e: Stopped): boolean {
  switch (e.cause) {
    case 'stop':
      return job.state === 'STOPPING';
    case 'rolled-back':
      return !job.subtasks.includes(subtaskKey(e.vertexId, e.index));
    case 'scaled-away':
      return [job.pending?.rescale, job.lastRescale].some(
        (r) => r !== undefined && r.scalingId === e.scalingId && r.chainId === e.vertexId && e.index >= r.parallelism,
      );
    default:
      return false;
  }
}

/** Why a subtask stopped, in words for a recovery's cause. */
export function stopDescription(e: Stopped): string {
  const scaling = e.scalingId !== undefined ? ` by scaling event ${e.scalingId}` : '';
  const why: Record<Stopped['cause'], string> = {
    stop: 'told to stop',
    cancel: 'told to cancel',
    'scaled-away': `scaled away${scaling}`,
    'rolled-back': `rolled back${scaling}`,
    'rescale-aborted': `its rescale was aborted${scaling}`,
    aborted: 'its worker ended it',
  };
  return why[e.cause];
}
