'use client';
import { isTerminal, type Checkpoint, type JobDetail } from '@keyflow/api';
import { useState } from 'react';
import { ConfirmDialog } from '@/components/ConfirmDialog';
import { StateBadge } from '@/components/StateBadge';
import { ErrorState, Loading } from '@/components/States';
import { errorMessage } from '@/lib/api';
import { useMayAct } from '@/lib/auth';
import { formatBytes, formatDateTime } from '@/lib/format';
import { useRetainedCheckpoints } from '@/lib/queries';
import { checkpointName, retainedCheckpoints } from './savepoints';
import { useDeleteSavepoint, useStartFromCheckpoint } from './useCheckpointActions';

/** The savepoints and retained checkpoints of a job: start a new job from one, or delete a savepoint. */
export function Savepoints({ job }: { job: JobDetail }) {
  const retained = useRetainedCheckpoints(job.id);
  const start = useStartFromCheckpoint(job);
  const remove = useDeleteSavepoint(job.id);
  const mayOperate = useMayAct('operator');
  const [toDelete, setToDelete] = useState<Checkpoint>();
  // While this job still runs, a second one from its checkpoint would write to the same sinks: asked first.
  const [toStart, setToStart] = useState<Checkpoint>();
  const ended = isTerminal(job.state);
  const startFrom = (c: Checkpoint) => (ended ? start.mutate(c.id) : setToStart(c));
  const rows = retained.data && retainedCheckpoints(retained.data);
  return (
    <div data-testid="savepoints">
      <p className="muted small">
        What a new job of version {job.version} can start from, with this job’s state and source offsets: savepoints stay until deleted, retention
        keeps only the newest checkpoints. The new job starts with the parallelism this job last ran with; change it there with the sliders.
      </p>
      {retained.isPending ? (
        <Loading label="Loading savepoints…" />
      ) : rows === undefined ? (
        <ErrorState what="the savepoints" error={retained.error} onRetry={() => void retained.refetch()} />
      ) : rows.length === 0 ? (
        <p className="muted">No completed checkpoint or savepoint yet.</p>
      ) : (
        <table className="table" aria-label="Savepoints and retained checkpoints">
          <thead>
            <tr>
              <th>ID</th>
              <th>Status</th>
              <th>Completed</th>
              <th>Attempt</th>
              <th>Size</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {rows.map((c) => (
              <tr key={c.id} data-testid="retained-row" data-kind={c.kind} data-status={c.status} data-number={c.number}>
                <td>
                  {c.number}
                  <span className="kind-tag">{c.kind.toLowerCase()}</span>
                </td>
                <td>
                  <StateBadge state={c.status} />
                </td>
                <td>{formatDateTime(c.completedAt)}</td>
                <td>{c.attempt}</td>
                <td>{formatBytes(c.status === 'COMPLETED' ? c.bytes : null)}</td>
                <td>
                  {mayOperate && c.status === 'COMPLETED' && (
                    <div className="actions">
                      <button
                        type="button"
                        className="link"
                        onClick={() => startFrom(c)}
                        disabled={start.isPending}
                        title={`Deploys version ${job.version} as a new job at the parallelism this job last ran with, restoring state and source offsets from ${checkpointName(c)}`}
                      >
                        Start new job
                      </button>
                      {c.kind === 'SAVEPOINT' && (
                        <button type="button" className="link danger" onClick={() => (remove.reset(), setToDelete(c))}>
                          Delete
                        </button>
                      )}
                    </div>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {start.isError && (
        <p className="field-error" role="alert">
          Could not start a new job: {errorMessage(start.error)}
        </p>
      )}
      <ConfirmDialog
        open={toStart !== undefined}
        title={`Start a second job from ${toStart ? checkpointName(toStart) : 'this checkpoint'}?`}
        confirmLabel="Start new job"
        busy={start.isPending}
        onConfirm={() => toStart && start.mutate(toStart.id, { onSettled: () => setToStart(undefined) })}
        onCancel={() => setToStart(undefined)}
      >
        <p>
          This job is {job.state}. Both jobs will run and write to the same sinks. To move to a new job instead, stop this one with a savepoint and
          start from that.
        </p>
      </ConfirmDialog>
      <ConfirmDialog
        open={toDelete !== undefined}
        title={`Delete ${toDelete ? checkpointName(toDelete) : 'savepoint'}?`}
        confirmLabel="Delete savepoint"
        busy={remove.isPending}
        onConfirm={() => toDelete && remove.mutate(toDelete.id, { onSuccess: () => setToDelete(undefined) })}
        onCancel={() => setToDelete(undefined)}
      >
        <p>Its state is deleted for good: no job can start from it any more.</p>
        {remove.isError && <p className="field-error">{errorMessage(remove.error)}</p>}
      </ConfirmDialog>
    </div>
  );
}
