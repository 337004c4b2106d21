'use client';
import type { Job } from '@keyflow/api';
import Link from 'next/link';
import { StateBadge } from '@/components/StateBadge';
import { Empty, ErrorState, Loading } from '@/components/States';
import { secondsBetween } from '@/features/job/stall';
import { useMayAct } from '@/lib/auth';
import { formatAgo, formatDateTime, formatDuration } from '@/lib/format';
import { isActive, useJobs, useWorkers } from '@/lib/queries';
import { useNow } from '@/lib/useNow';

/** One job in the list; a stall shows as it starts and ends (the control plane tells every page of the list). */
function JobRow({ job: j, now }: { job: Job; now: number }) {
  return (
    <tr data-testid="job-row" data-job={j.id}>
      <td>
        <Link href={`/jobs/${j.id}`}>
          <strong>{j.pipelineName}</strong> <span className="muted">v{j.version}</span>
        </Link>
      </td>
      <td>
        <StateBadge state={j.state} stalled={!!j.stall} />
        {j.stall && (
          <div className="warn-text small" data-testid="job-stall">
            stalled {secondsBetween(j.stall.since, now)} s, held up by {j.stall.subtasks.map((s) => s.subtask).join(', ')}
          </div>
        )}
        {j.failureReason && <div className="bad-text small">{j.failureReason}</div>}
      </td>
      <td title={formatDateTime(j.createdAt)}>{formatAgo(j.createdAt, now)}</td>
      <td>{formatDuration((j.endedAt ? new Date(j.endedAt).getTime() : now) - new Date(j.createdAt).getTime())}</td>
      <td>{j.attempt}</td>
      <td>
        <Link href={`/jobs/${j.id}`} className="mono small">
          {j.id.slice(0, 8)}
        </Link>
      </td>
    </tr>
  );
}

/** The overview: every job with its live state (a stalled one marked), running ones first, and the pool's capacity. */
export function JobList() {
  const jobs = useJobs();
  const now = useNow();
  const workers = useWorkers();
  const mayEdit = useMayAct('operator');
  const slots = workers.data?.reduce((n, w) => n + w.slots, 0) ?? 0;
  const used = workers.data?.reduce((n, w) => n + w.usedSlots, 0) ?? 0;
  const sorted = [...(jobs.data ?? [])].sort((a, b) => Number(isActive(b.state)) - Number(isActive(a.state)));
  return (
    <div className="page">
      <div className="page-head">
        <h1>Jobs</h1>
        <div className="head-stats">
          <Link href="/workers">{workers.data ? `${workers.data.length} workers · ${used}/${slots} slots used` : 'workers…'}</Link>
          {mayEdit && (
            <Link href="/pipelines/new" className="button primary">
              New pipeline
            </Link>
          )}
        </div>
      </div>
      {jobs.isPending ? (
        <Loading label="Loading jobs…" />
      ) : jobs.data === undefined ? (
        <ErrorState what="the jobs" error={jobs.error} onRetry={() => void jobs.refetch()} />
      ) : sorted.length === 0 ? (
        <Empty title="No job has run yet.">
          {mayEdit ? (
            <>
              <Link href="/pipelines">Open a pipeline</Link> and deploy it, or <Link href="/pipelines/new">draw a new one</Link>.
            </>
          ) : (
            'An operator deploys them; they show here, live.'
          )}
        </Empty>
      ) : (
        <table className="table" data-testid="jobs">
          <thead>
            <tr>
              <th>Pipeline</th>
              <th>State</th>
              <th>Started</th>
              <th>Duration</th>
              <th>Attempt</th>
              <th>Job</th>
            </tr>
          </thead>
          <tbody>
            {sorted.map((j) => (
              <JobRow key={j.id} job={j} now={now} />
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
