'use client';
import type { JobDetail } from '@keyflow/api';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import Link from 'next/link';
import { useRouter } from 'next/navigation';
import { useState } from 'react';
import { ConfirmDialog } from '@/components/ConfirmDialog';
import { StateBadge } from '@/components/StateBadge';
import { ErrorState, Loading } from '@/components/States';
import { api, errorMessage, queryKeys } from '@/lib/api';
import { formatAgo, formatCount, formatDateTime, formatDuration, formatRate, formatTime } from '@/lib/format';
import { isActive, useCheckpoints, useDeadLetters, useJob } from '@/lib/queries';
import { useJobRoom } from '@/lib/socket';
import { useNow } from '@/lib/useNow';
import { backpressureColor, backpressureLevel } from './backpressure';
import { CheckpointSummary, CheckpointTable } from './CheckpointTable';
import { CheckpointTimeline } from './CheckpointTimeline';
import { JobGraph } from './JobGraph';
import { KeyGroups } from './KeyGroupView';
import { ScalingTimeline } from './ScalingTimeline';
import { LifecycleEvents } from './LifecycleEvents';
import { SinkSamples } from './SinkSamples';

function Controls({ job }: { job: JobDetail }) {
  const client = useQueryClient();
  const [confirmCancel, setConfirmCancel] = useState(false);
  // The transitions themselves arrive as `job:state` events; the answer may be older than they are.
  const refetch = () => void client.invalidateQueries({ queryKey: queryKeys.job(job.id) });
  const stop = useMutation({ mutationFn: () => api.stopJob(job.id), onSuccess: refetch });
  const cancel = useMutation({ mutationFn: () => api.cancelJob(job.id), onSuccess: () => (refetch(), setConfirmCancel(false)) });
  const checkpoint = useMutation({ mutationFn: () => api.triggerCheckpoint(job.id) });
  const router = useRouter();
  const restoreFrom = job.latestCheckpoints.find((c) => c.status === 'COMPLETED');
  const restart = useMutation({
    mutationFn: () =>
      api.deployJob({ pipelineId: job.pipelineId, version: job.version, restoreFromCheckpointId: restoreFrom!.id, checkpointIntervalMs: job.checkpointIntervalMs }),
    onSuccess: (next) => {
      void client.invalidateQueries({ queryKey: queryKeys.jobs, exact: true });
      router.push(`/jobs/${next.id}`);
    },
  });
  const error = stop.error ?? cancel.error ?? checkpoint.error ?? restart.error;
  const active = isActive(job.state);
  return (
    <div className="controls">
      <button type="button" onClick={() => checkpoint.mutate()} disabled={job.state !== 'RUNNING' || checkpoint.isPending} title="Trigger a checkpoint now">
        Checkpoint now
      </button>
      <button type="button" onClick={() => stop.mutate()} disabled={job.state !== 'RUNNING' || stop.isPending} title="Takes a savepoint, then stops (STOPPING → STOPPED)">
        {stop.isPending ? 'Stopping…' : 'Stop with savepoint'}
      </button>
      <button type="button" className="danger" onClick={() => (cancel.reset(), setConfirmCancel(true))} disabled={!active || cancel.isPending}>
        Cancel
      </button>
      {!active && restoreFrom && (
        <button
          type="button"
          className="primary"
          onClick={() => restart.mutate()}
          disabled={restart.isPending}
          title={`Deploys version ${job.version} again, restoring state and source offsets from checkpoint #${restoreFrom.number}`}
        >
          {restart.isPending ? 'Deploying…' : `Resume from ${restoreFrom.kind === 'SAVEPOINT' ? 'savepoint' : 'checkpoint'} #${restoreFrom.number}`}
        </button>
      )}
      {error && (
        <span className="field-error" role="alert">
          {errorMessage(error)}
        </span>
      )}
      <ConfirmDialog
        open={confirmCancel}
        title="Cancel this job?"
        confirmLabel="Cancel job"
        busy={cancel.isPending}
        onConfirm={() => cancel.mutate()}
        onCancel={() => setConfirmCancel(false)}
      >
        <p>Every subtask stops at once, without a savepoint. The last completed checkpoint stays available to restore from.</p>
        {cancel.isError && <p className="field-error">{errorMessage(cancel.error)}</p>}
      </ConfirmDialog>
    </div>
  );
}

function DeadLetters({ job, vertexId }: { job: JobDetail; vertexId: string }) {
  const letters = useDeadLetters(job.id, vertexId, job.state === 'RUNNING');
  if (letters.data === undefined) return letters.isPending ? <Loading label="Loading dead letters…" /> : null;
  return (
    <>
      <h3>Dead letters (latest)</h3>
      <table className="table nested" data-testid="dead-letters">
        <tbody>
          {letters.data.slice(0, 10).map((d, i) => (
            <tr key={`${d.at}-${i}`}>
              <td className="muted small">{formatTime(new Date(d.at).toISOString())}</td>
              <td className="bad-text small">{d.reason}</td>
              <td className="mono small">{JSON.stringify(d.record)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function Subtasks({ job, vertexId }: { job: JobDetail; vertexId: string }) {
  const rows = job.metrics?.subtasks.filter((s) => s.vertexId === vertexId) ?? [];
  const totals = job.metrics?.vertices[vertexId];
  return (
    <section className="card" data-testid="subtasks">
      <h2>
        {vertexId}: subtasks <span className="muted small">({formatCount(totals?.recordsIn ?? 0)} records in, {formatCount(totals?.recordsOut ?? 0)} out in all)</span>
      </h2>
      {rows.length === 0 ? (
        <p className="muted">No subtask reports metrics right now.</p>
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th>Subtask</th>
              <th>Records in/s</th>
              <th>Records out/s</th>
              <th>Backpressure</th>
              <th>Dead letters</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((s) => (
              <tr key={s.index}>
                <td>
                  {vertexId}#{s.index}
                </td>
                <td>{formatRate(s.recordsInPerSec)}</td>
                <td>{formatRate(s.recordsOutPerSec)}</td>
                <td style={{ color: backpressureColor[backpressureLevel(s.backpressure)] }}>{Math.round(s.backpressure * 100)}%</td>
                <td>{formatCount(s.deadLetters)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {!!totals?.deadLetters && <DeadLetters job={job} vertexId={vertexId} />}
    </section>
  );
}

/** A job, live: its graph with rates and backpressure, state and lifecycle, controls, checkpoints and sink output. */
export function JobView({ id }: { id: string }) {
  useJobRoom(id);
  const job = useJob(id);
  const checkpoints = useCheckpoints(id);
  const [selected, setSelected] = useState<string>();
  const now = useNow();

  if (job.isPending) return <Loading label="Loading the job…" />;
  if (job.data === undefined) return <ErrorState what="the job" error={job.error} onRetry={() => void job.refetch()} />;
  const j = job.data;
  const ended = j.endedAt ? new Date(j.endedAt).getTime() : now;

  return (
    <div className="page job-page">
      <div className="page-head">
        <div>
          <h1>
            <Link href={`/pipelines/${j.pipelineId}?version=${j.version}`}>{j.pipelineName}</Link> <span className="muted">v{j.version}</span>{' '}
            <StateBadge state={j.state} />
          </h1>
          <p className="muted small">
            job <code>{j.id}</code> · attempt {j.attempt} · started {formatDateTime(j.createdAt)} ({formatAgo(j.createdAt, now)}) · ran{' '}
            {formatDuration(ended - new Date(j.createdAt).getTime())} · checkpoint every {formatDuration(j.checkpointIntervalMs)}
            {j.restoredFromId !== null && <> · restored from checkpoint {j.restoredFromId}</>}
          </p>
          {j.failureReason && <p className="bad-text">Failed: {j.failureReason}</p>}
        </div>
        <Controls job={j} />
      </div>

      <JobGraph job={j} selected={selected} onSelect={setSelected} />
      {selected && <Subtasks job={j} vertexId={selected} />}

      <ScalingTimeline jobId={j.id} />

      <section className="card" data-testid="checkpoints">
        <h2>Checkpoints</h2>
        {checkpoints.isPending ? (
          <Loading label="Loading checkpoints…" />
        ) : checkpoints.data === undefined ? (
          <ErrorState what="the checkpoints" error={checkpoints.error} onRetry={() => void checkpoints.refetch()} />
        ) : (
          <>
            <CheckpointSummary checkpoints={checkpoints.data} />
            <CheckpointTimeline checkpoints={checkpoints.data} />
            <CheckpointTable checkpoints={checkpoints.data} />
          </>
        )}
      </section>

      <section className="card" data-testid="key-groups">
        <h2>Key groups</h2>
        <KeyGroups jobId={j.id} live={isActive(j.state)} />
      </section>

      <div className="columns">
        <section className="card">
          <h2>Lifecycle</h2>
          <LifecycleEvents events={j.events} />
        </section>
        <section className="card">
          <h2>Sink output</h2>
          <SinkSamples job={j} />
        </section>
      </div>
    </div>
  );
}
