import type { JobEvent } from '@keyflow/api';
import { StateBadge } from '@/components/StateBadge';
import { formatDateTime } from '@/lib/format';

/** Every transition of the job's lifecycle, newest first. */
export function LifecycleEvents({ events }: { events: JobEvent[] }) {
  if (events.length === 0) return <p className="muted">No lifecycle event yet.</p>;
  return (
    <ol className="events" data-testid="lifecycle-events">
      {[...events].reverse().map((e, i) => (
        <li key={`${e.at}-${e.toState}-${i}`}>
          <time>{formatDateTime(e.at)}</time>
          <span>
            {e.fromState ? <StateBadge state={e.fromState} /> : <span className="muted">—</span>} → <StateBadge state={e.toState} />
          </span>
          <span className="muted small">attempt {e.attempt}</span>
          {e.reason && <span className="reason">{e.reason}</span>}
        </li>
      ))}
    </ol>
  );
}
