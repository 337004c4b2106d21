'use client';
import type { WorkerInfo } from '@keyflow/api';
import Link from 'next/link';
import { Empty, ErrorState, Loading } from '@/components/States';
import { formatAgo, formatDateTime, formatDuration } from '@/lib/format';
import { useJobs, useWorkers } from '@/lib/queries';
import { useNow } from '@/lib/useNow';

/** Cores used, measured or as the placement weighed them. */
const formatCores = (cores: number) => `${cores.toFixed(2)} cpu`;

/** A heartbeat older than this is shown as late (workers beat about every second). */
const LATE_MS = 10_000;

function SubtaskList({ worker, pipelineOf }: { worker: WorkerInfo; pipelineOf: (jobId: string) => string | undefined }) {
  if (worker.subtasks.length === 0) return <span className="muted">idle</span>;
  const byJob = new Map<string, WorkerInfo['subtasks']>();
  for (const s of worker.subtasks) byJob.set(s.jobId, [...(byJob.get(s.jobId) ?? []), s]);
  return (
    <ul className="subtasks">
      {[...byJob].map(([jobId, subtasks]) => (
        <li key={jobId} data-job={jobId}>
          <Link href={`/jobs/${jobId}`}>{pipelineOf(jobId) ?? jobId.slice(0, 8)}</Link>:{' '}
          {subtasks
            .sort((a, b) => a.vertexId.localeCompare(b.vertexId) || a.index - b.index)
            .map((s) => (
              <span
                key={`${s.vertexId}#${s.index}`}
                className="chip"
                data-testid="worker-subtask"
                data-subtask={`${s.vertexId}#${s.index}`}
                data-parallelism={s.parallelism}
                title={
                  `one of ${s.parallelism} subtasks of ${s.vertexId} (its parallelism now), attempt ${s.attempt}, running ${formatDuration(Date.now() - s.since)}` +
                  (s.cost !== undefined
                    ? `; placed as using ${s.cost.toFixed(2)} of a core: its operator's CPU before the recovery, per subtask`
                    : '')
                }
              >
                {s.vertexId}#{s.index}
                <span className="chip-par">×{s.parallelism}</span>
                {s.cost !== undefined && <span className="chip-par">{formatCores(s.cost)}</span>}
              </span>
            ))}
        </li>
      ))}
    </ul>
  );
}

/** The worker pool: each worker's slots (used and free), the subtasks it runs (with their parallelism now), and its last heartbeat. */
export function WorkerPool() {
  const workers = useWorkers();
  const jobs = useJobs();
  const now = useNow();
  const pipelineOf = (jobId: string) => jobs.data?.find((j) => j.id === jobId)?.pipelineName;
  if (workers.isPending) return <Loading label="Loading the worker pool…" />;
  if (workers.data === undefined) return <ErrorState what="the worker pool" error={workers.error} onRetry={() => void workers.refetch()} />;
  const list = workers.data;
  // Ages by the clock heartbeats are stamped with (the browser's may differ), grown by the time since the list came.
  const ageOf = (w: WorkerInfo) => w.heartbeatAgeMs + Math.max(0, now - workers.dataUpdatedAt);
  const slots = list.reduce((n, w) => n + w.slots, 0);
  const used = list.reduce((n, w) => n + w.usedSlots, 0);
  return (
    <div className="page">
      <div className="page-head">
        <h1>Workers</h1>
        <dl className="stats">
          <div>
            <dt>Workers</dt>
            <dd>{list.length}</dd>
          </div>
          <div>
            <dt>Slots used</dt>
            <dd>{used}</dd>
          </div>
          <div>
            <dt>Slots free</dt>
            <dd>{slots - used}</dd>
          </div>
        </dl>
      </div>
      {list.length === 0 ? (
        <Empty title="No worker is running.">
          Start one with <code>npm run up</code>, or <code>WORKER_SLOTS=4 pnpm --filter @keyflow/worker start</code> next to a control plane.
        </Empty>
      ) : (
        <table className="table" data-testid="workers">
          <thead>
            <tr>
              <th>Worker</th>
              <th>Host · pid</th>
              <th>Slots</th>
              <th title="Cores the worker process used over its last few heartbeats, all its threads together (its subtasks share one)">CPU</th>
              <th title="Each subtask as operator#index, with its operator's parallelism now">Subtasks</th>
              <th title="The user operators it loaded (KEYFLOW_OPERATORS), at their versions: it runs a job's operator only at the version the job was deployed with">
                Your operators
              </th>
              <th>Last heartbeat</th>
            </tr>
          </thead>
          <tbody>
            {list.map((w) => {
              const age = ageOf(w);
              const late = age > LATE_MS;
              return (
                <tr key={w.id} data-testid="worker-row">
                  <td>
                    <strong>{w.id}</strong>
                  </td>
                  <td className="mono small">
                    {w.host} · {w.pid}
                  </td>
                  <td>
                    <span className="slots" aria-label={`${w.usedSlots} of ${w.slots} slots used`}>
                      {Array.from({ length: w.slots }, (_, i) => (
                        <span key={i} className={i < w.usedSlots ? 'slot used' : 'slot'} />
                      ))}
                    </span>{' '}
                    {w.usedSlots} used · {Math.max(0, w.slots - w.usedSlots)} free
                  </td>
                  <td className="mono small" data-testid="worker-cpu">
                    {w.cpu !== undefined ? formatCores(w.cpu) : <span className="muted">—</span>}
                  </td>
                  <td>
                    <SubtaskList worker={w} pipelineOf={pipelineOf} />
                  </td>
                  <td className="mono small" data-testid="worker-operators">
                    {w.operators.length ? w.operators.join(', ') : <span className="muted">none</span>}
                  </td>
                  <td className={late ? 'bad-text' : undefined} title={formatDateTime(w.lastHeartbeat)}>
                    {formatAgo(new Date(now - age).toISOString(), now)}
                    {late && ' (late)'}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}
