import type { AuditEvent, JobEvent } from '@keyflow/api';

export type TimelineEntry = { at: string; state: JobEvent } | { at: string; audit: AuditEvent };

/**
 * A job's transitions and who asked for what, newest first. At the same instant, what was asked sits under the
 * transition it caused, as it came first.
 */
export function timeline(events: JobEvent[], audit: AuditEvent[]): TimelineEntry[] {
  const entries: TimelineEntry[] = [...audit.map((a) => ({ at: a.at, audit: a })), ...events.map((state) => ({ at: state.at, state }))];
  return entries
    .map((entry, order) => ({ entry, order, time: new Date(entry.at).getTime() }))
    .sort((a, b) => b.time - a.time || b.order - a.order)
    .map((x) => x.entry);
}
