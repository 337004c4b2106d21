import type { JobState } from '@keyflow/api';

const TONE: Record<JobState, string> = {
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
};

export function StateBadge({ state }: { state: JobState | 'PENDING' | 'COMPLETED' }) {
  const tone = state === 'COMPLETED' ? 'ok' : state === 'PENDING' ? 'info' : TONE[state];
  return (
    <span className={`badge badge-${tone}`} data-testid="state-badge" data-state={state}>
      {state}
    </span>
  );
}
