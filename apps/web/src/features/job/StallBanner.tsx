'use client';
import type { JobDetail } from '@keyflow/api';
import { formatTime } from '@/lib/format';
import { culpritName, culprits, failoverText, jobChains, secondsBetween } from './stall';

/**
 * A stuck job never looks healthy: while the control plane sees no progress, an amber banner names the subtasks
 * that hold the job up (not those merely waiting for them), why, for how long, and when the job fails over.
 */
export function StallBanner({ job, now }: { job: JobDetail; now: number }) {
  const stall = job.stall;
  if (!stall) return null;
  const list = culprits(stall, jobChains(job.graph, job.plan));
  return (
    <section className="stall-banner" role="alert" data-testid="stall-banner">
      <p>
        <strong>Stalled for {secondsBetween(stall.since, now)} s:</strong> the job makes no progress although it is {job.state}. It{' '}
        <span data-testid="stall-failover">{failoverText(stall.failoverAt, now)}</span>{' '}
        <span className="muted">(at {formatTime(stall.failoverAt)})</span> unless it moves again. Held up by:
      </p>
      <ul>
        {list.map((c) => (
          <li key={c.subtask} data-testid="stalled-subtask" data-subtask={c.subtask}>
            <code>{culpritName(c)}</code>, which {c.reason} <span className="muted">(for {secondsBetween(c.since, now)} s)</span>
          </li>
        ))}
      </ul>
    </section>
  );
}
