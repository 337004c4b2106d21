import type { AuditEvent, JobEvent } from '@keyflow/api';
import { StateBadge } from '@/components/StateBadge';
import { auditDetails, auditText } from '@/features/audit/auditText';
import { formatDateTime } from '@/lib/format';
import { timeline } from './timeline';

/** Every transition of the job's lifecycle and every action someone took on it (deploy, rescale, stop …), newest first. */
export function LifecycleEvents({ events, audit }: { events: JobEvent[]; audit: AuditEvent[] }) {
  if (events.length === 0 && audit.length === 0) return <p className="muted">No lifecycle event yet.</p>;
  return (
    <ol className="events" data-testid="lifecycle-events">
      {timeline(events, audit).map((entry, i) =>
        'audit' in entry ? (
          <li key={`audit-${entry.audit.id}`} className="event-audit" data-testid="audit-entry" data-action={entry.audit.action}>
            <time>{formatDateTime(entry.at)}</time>
            <span>
              {auditText(entry.audit)} by <strong>{entry.audit.actorLabel}</strong>
            </span>
            {auditDetails(entry.audit) && <span className="reason">{auditDetails(entry.audit)}</span>}
          </li>
        ) : (
          <li key={`${entry.at}-${entry.state.toState}-${i}`}>
            <time>{formatDateTime(entry.at)}</time>
            <span>
              {entry.state.fromState ? <StateBadge state={entry.state.fromState} /> : <span className="muted">—</span>} →{' '}
              <StateBadge state={entry.state.toState} />
            </span>
            <span className="muted small">attempt {entry.state.attempt}</span>
            {entry.state.reason && <span className="reason">{entry.state.reason}</span>}
          </li>
        ),
      )}
    </ol>
  );
}
