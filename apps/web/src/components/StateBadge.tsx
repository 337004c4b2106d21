import type { Checkpoint, JobState } from '@keyflow/api';

type CheckpointStatus = Checkpoint['status'];

const TONE: Record<JobState | CheckpointStatus, string> = {
  CREATED: 'neutral',
  SCHEDULING: 'info',
  RUNNING: 'ok',
  RESCALING: 'info',
  RECOVERING: 'warn',
  STOPPING: 'info',
  STOPPED: 'neutral',
  CANCELED: 'neutral',
  FAILED: 'bad',
  FINISHED: 'neutral',
  PENDING: 'info',
  COMPLETED: 'ok',
  DISCARDED: 'neutral',
};

const HELP: Partial<Record<JobState | CheckpointStatus, string>> = {
  DISCARDED: 'Completed, then let go by retention: its state is deleted, so no job can start from it; its history stays',
};

/**
 * A job's state or a checkpoint's status. A stalled job keeps its state (RUNNING) and gets an amber marker: a stuck
 * job must never look healthy.
 */
export function StateBadge({ state, stalled }: { state: JobState | CheckpointStatus; stalled?: boolean }) {
  return (
    <span
      className={`badge badge-${stalled ? 'warn' : TONE[state]}`}
      data-testid="state-badge"
      data-state={state}
      data-stalled={stalled || undefined}
      title={HELP[state]}
    >
      {state}
      {stalled && (
        <span className="badge-stalled" data-testid="stalled-marker">
          {' '}
          · stalled
        </span>
      )}
    </span>
  );
}
