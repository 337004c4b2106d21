'use client';
import type { JobDetail } from '@keyflow/api';
import { graphSchema } from '@keyflow/core';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import Link from 'next/link';
import { useState } from 'react';
import { ConfirmDialog } from '@/components/ConfirmDialog';
import { StateBadge } from '@/components/StateBadge';
import { ErrorState, Loading } from '@/components/States';
import { Tabs } from '@/components/Tabs';
import { api, errorMessage, queryKeys } from '@/lib/api';
import { formatAgo, formatCount, formatDateTime, formatDuration, formatRate } from '@/lib/format';
import { useMayAct, useRole } from '@/lib/auth';
import { isActive, useCheckpoints, useJob, useRecoveries } from '@/lib/queries';
import { useJobRoom } from '@/lib/socket';
import { useNow } from '@/lib/useNow';
import { backpressureColor, backpressureLevel, busyColor } from './backpressure';
import { CheckpointSummary, CheckpointTable } from './CheckpointTable';
import { CheckpointTimeline } from './CheckpointTimeline';
import { DeadLetters, OperatorDeadLetters } from './DeadLetters';
import { operatorsWithDeadLetters } from './deadLetters';
import { JobGraph } from './JobGraph';
import { KeyGroups } from './KeyGroupView';
import { OperatorLateRecords } from './LateRecords';
import { ScalingTimeline } from './ScalingTimeline';
import { LifecycleEvents } from './LifecycleEvents';
import { Recoveries } from './Recoveries';
import { Savepoints } from './Savepoints';
import { checkpointName } from './savepoints';
import { SinkSamples } from './SinkSamples';
import { StallBanner } from './StallBanner';
import { culprits, jobChains } from './stall';
import { useStartFromCheckpoint, useTriggerSavepoint } from './useCheckpointActions';
import { Watermarks } from './Watermarks';

function Controls({ job, onSavepoint }: { job: JobDetail; onSavepoint: () => void }) {
  const client = useQueryClient();
  const role = useRole();
  const mayOperate = useMayAct('operator');
  const [confirmCancel, setConfirmCancel] = useState(false);
  // The transitions themselves arrive as `job:state` events; the answer may be older than they are.
  const refetch = () => void client.invalidateQueries({ queryKey: queryKeys.job(job.id) });
  const stop = useMutation({ mutationFn: () => api.stopJob(job.id), onSuccess: refetch });
  const cancel = useMutation({ mutationFn: () => api.cancelJob(job.id), onSuccess: () => (refetch(), setConfirmCancel(false)) });
  // The job's audit trail now says who triggered it.
  const checkpoint = useMutation({
    mutationFn: () => api.triggerCheckpoint(job.id),
    onSuccess: () => void client.invalidateQueries({ queryKey: queryKeys.job(job.id), exact: true }),
  });
  const savepoint = useTriggerSavepoint(job.id);
  const restoreFrom = job.latestCheckpoints.find((c) => c.status === 'COMPLETED');
  const restart = useStartFromCheckpoint(job);
  const error = stop.error ?? cancel.error ?? checkpoint.error ?? savepoint.error ?? restart.error;
  const active = isActive(job.state);
  if (!mayOperate)
    return (
      <p className="muted small read-only-note" data-testid="read-only-note">
        {role ? `You are a ${role}: deploying, rescaling, checkpoints and stopping need the operator role.` : 'Actions show once your role is known.'}
      </p>
    );
  return (
    <div className="controls">
      <div className="controls-buttons">
        <button
          type="button"
          onClick={() => checkpoint.mutate()}
          disabled={job.state !== 'RUNNING' || checkpoint.isPending}
          title="Trigger a checkpoint now"
        >
          Checkpoint now
        </button>
        <button
          type="button"
          onClick={() => savepoint.mutate(undefined, { onSuccess: onSavepoint })}
          disabled={job.state !== 'RUNNING' || savepoint.isPending}
          title="Takes a savepoint and keeps running: retention never removes it, and a new job can start from it"
        >
          Savepoint now
        </button>
        <button
          type="button"
          onClick={() => stop.mutate()}
          disabled={job.state !== 'RUNNING' || stop.isPending}
          title="Takes a savepoint, then stops (STOPPING → STOPPED)"
        >
          {stop.isPending ? 'Stopping…' : 'Stop with savepoint'}
        </button>
        <button type="button" className="danger" onClick={() => (cancel.reset(), setConfirmCancel(true))} disabled={!active || cancel.isPending}>
          Cancel
        </button>
        {!active && restoreFrom && (
          <button
            type="button"
            className="primary"
            onClick={() => restart.mutate(restoreFrom.id)}
            disabled={restart.isPending}
            title={`Deploys version ${job.version} again at the parallelism this job last ran with, restoring state and source offsets from ${checkpointName(restoreFrom)}`}
          >
            {restart.isPending ? 'Deploying…' : `Resume from ${checkpointName(restoreFrom)}`}
          </button>
        )}
      </div>
      {error && (
        <span className="field-error" role="alert">
          {errorMessage(error)}
        </span>
      )}
      <ConfirmDialog
        open={confirmCancel}
        title="Cancel this job?"
        confirmLabel="Cancel job"
        cancelLabel="Keep running"
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

function Subtasks({ job, vertexId }: { job: JobDetail; vertexId: string }) {
  const parsed = graphSchema.safeParse(job.graph);
  const windowed = parsed.success && parsed.data.vertices.some((v) => v.id === vertexId && v.type === 'window');
  const rows = job.metrics?.subtasks.filter((s) => s.vertexId === vertexId) ?? [];
  const held = job.stall ? culprits(job.stall, jobChains(job.graph, job.plan)).filter((c) => c.vertices.includes(vertexId)) : [];
  const totals = job.metrics?.vertices[vertexId];
  return (
    <section className="card" data-testid="subtasks">
      <h2>
        {vertexId}: subtasks{' '}
        <span className="muted small">
          ({formatCount(totals?.recordsIn ?? 0)} records in, {formatCount(totals?.recordsOut ?? 0)} out in all)
        </span>
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
              <th title="share of time waiting on full output channels">Backpressure</th>
              <th title="share of time neither waiting for input nor on full output channels">Busy</th>
              <th>Dead letters</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((s) => {
              const stalled = held.find((c) => c.index === s.index);
              return (
                <tr key={s.index} className={stalled ? 'stalled' : undefined} title={stalled && `holds the job up: it ${stalled.reason}`}>
                  <td>
                    {vertexId}#{s.index}
                    {stalled && <span className="op-tag op-tag-stalled">stalled</span>}
                  </td>
                  <td>{formatRate(s.recordsInPerSec)}</td>
                  <td>{formatRate(s.recordsOutPerSec)}</td>
                  <td style={{ color: backpressureColor[backpressureLevel(s.backpressure)] }}>{Math.round(s.backpressure * 100)}%</td>
                  <td style={{ color: busyColor(s.busy) }}>{Math.round(s.busy * 100)}%</td>
                  <td>{formatCount(s.deadLetters)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {!!totals?.deadLetters && <OperatorDeadLetters job={job} vertexId={vertexId} name={vertexId} total={totals.deadLetters} />}
      {(windowed || !!totals?.lateRecords) && <OperatorLateRecords job={job} vertexId={vertexId} name={vertexId} total={totals?.lateRecords ?? 0} />}
    </section>
  );
}

type DetailTab = 'checkpoints' | 'savepoints' | 'recoveries' | 'dead-letters' | 'watermarks';

/**
 * A job, live: its graph with rates, backpressure and parallelism (and the target it converges to), state and
 * lifecycle (a stall, and who holds it up), controls, checkpoints, failures, watermarks and sink output.
 */
export function JobView({ id }: { id: string }) {
  useJobRoom(id);
  const job = useJob(id);
  const checkpoints = useCheckpoints(id);
  const recoveries = useRecoveries(id);
  const [selected, setSelected] = useState<string>();
  const [tab, setTab] = useState<DetailTab>('checkpoints');
  const now = useNow();

  if (job.isPending) return <Loading label="Loading the job…" />;
  if (job.data === undefined) return <ErrorState what="the job" error={job.error} onRetry={() => void job.refetch()} />;
  const j = job.data;
  const ended = j.endedAt ? new Date(j.endedAt).getTime() : now;
  const deadLetters = operatorsWithDeadLetters(j.metrics).reduce((n, o) => n + o.total, 0);
  const tabs = [
    { id: 'checkpoints', title: 'Checkpoints' },
    { id: 'savepoints', title: 'Savepoints' },
    { id: 'recoveries', title: 'Recoveries', count: recoveries.data?.length },
    { id: 'dead-letters', title: 'Dead letters', count: deadLetters, alarm: true },
    { id: 'watermarks', title: 'Watermarks' },
  ] as const;

  return (
    <div className="page job-page">
      <div className="page-head job-head">
        <div>
          <h1>
            <Link href={`/pipelines/${j.pipelineId}?version=${j.version}`}>{j.pipelineName}</Link> <span className="muted">v{j.version}</span>{' '}
            <StateBadge state={j.state} stalled={!!j.stall} />
          </h1>
          <p className="muted small">
            job <code>{j.id}</code> · attempt {j.attempt} · started {formatDateTime(j.createdAt)} ({formatAgo(j.createdAt, now)}) · ran{' '}
            {formatDuration(ended - new Date(j.createdAt).getTime())} · checkpoint every {formatDuration(j.checkpointIntervalMs)}
            {j.restoredFrom ? (
              <span data-testid="restored-from">
                {' '}
                · restored from checkpoint #{j.restoredFrom.number} of{' '}
                <Link href={`/jobs/${j.restoredFrom.jobId}`}>job {j.restoredFrom.jobId.slice(0, 8)}</Link>
              </span>
            ) : (
              j.restoredFromId !== null && <span data-testid="restored-from"> · restored from checkpoint id {j.restoredFromId}</span>
            )}
          </p>
          {j.failureReason && <p className="bad-text">Failed: {j.failureReason}</p>}
          {!!j.checkpointFailures?.consecutive && (
            <p className="bad-text" data-testid="checkpoint-failures">
              {j.checkpointFailures.consecutive} checkpoint{j.checkpointFailures.consecutive === 1 ? '' : 's'} failed in a row (
              {j.checkpointFailures.tolerable} tolerated before the job fails over)
              {j.checkpointFailures.lastReason && <>: {j.checkpointFailures.lastReason}</>}
            </p>
          )}
        </div>
        <Controls job={j} onSavepoint={() => setTab('savepoints')} />
      </div>
      <StallBanner job={j} now={now} />

      <JobGraph job={j} selected={selected} onSelect={setSelected} />
      {selected && <Subtasks job={j} vertexId={selected} />}

      <ScalingTimeline jobId={j.id} />

      <section className="card" data-testid="job-details">
        <Tabs label="Job details" tabs={tabs} selected={tab} onSelect={setTab}>
          {tab === 'checkpoints' ? (
            <div data-testid="checkpoints">
              {checkpoints.isPending ? (
                <Loading label="Loading checkpoints…" />
              ) : checkpoints.data === undefined ? (
                <ErrorState what="the checkpoints" error={checkpoints.error} onRetry={() => void checkpoints.refetch()} />
              ) : (
                <>
                  <CheckpointSummary checkpoints={checkpoints.data} counts={j.checkpointCounts} />
                  <CheckpointTimeline checkpoints={checkpoints.data} />
                  <CheckpointTable checkpoints={checkpoints.data} />
                </>
              )}
            </div>
          ) : tab === 'savepoints' ? (
            <Savepoints job={j} />
          ) : tab === 'recoveries' ? (
            <Recoveries
              jobId={j.id}
              startedFrom={j.restoredFrom && j.restoredFromId !== null ? { checkpointId: j.restoredFromId, ...j.restoredFrom } : undefined}
            />
          ) : tab === 'dead-letters' ? (
            <DeadLetters job={j} />
          ) : (
            <Watermarks job={j} />
          )}
        </Tabs>
      </section>

      <section className="card" data-testid="key-groups">
        <h2>Key groups</h2>
        <KeyGroups jobId={j.id} live={isActive(j.state)} />
      </section>

      <div className="columns">
        <section className="card">
          <h2>Lifecycle</h2>
          <LifecycleEvents events={j.events} audit={j.audit} />
        </section>
        <section className="card">
          <h2>Sink output</h2>
          <SinkSamples job={j} />
        </section>
      </div>
    </div>
  );
}
