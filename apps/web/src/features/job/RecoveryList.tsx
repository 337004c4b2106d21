import type { Recovery } from '@keyflow/api';
// Relative imports: this list is rendered by a unit test, which does not resolve the `@/` alias.
import { formatBytes, formatCount, formatDuration, formatTime } from '../../lib/format';
import {
  recoveryCheckpoint,
  recoveryPhases,
  type RecoveryPhase,
  recoveryStatusText,
  recoveryTimings,
  recoveryTone,
  type StartedFrom,
} from './recovery';

/** A phase's time: the first as a clock time, the others as time since the phase before (the time itself when that is unknown). */
function phaseText(p: RecoveryPhase, r: Recovery, now: number): string {
  if (p.label === 'failed') return p.at ? formatTime(p.at) : 'unknown';
  if (p.afterMs !== null) return `+${formatDuration(p.afterMs)}`;
  if (p.at) return formatTime(p.at);
  return r.status === 'RESTORING' ? `… ${formatDuration(Math.max(0, now - Date.parse(r.detectedAt)))} so far` : '—';
}

function RecoveryRow({ r, now, startedFrom }: { r: Recovery; now: number; startedFrom: StartedFrom | undefined }) {
  const t = recoveryTimings(r);
  const tone = recoveryTone(r.status);
  return (
    <li className={`scaling-event tone-${tone}`} data-testid="recovery" data-status={r.status} data-attempt={r.attempt}>
      <div className="scaling-head">
        <strong>Attempt {r.attempt}</strong>{' '}
        <span className={`badge badge-${tone}`} data-testid="recovery-status" title={recoveryStatusText(r.status)}>
          {r.status}
        </span>{' '}
        <span className="recovery-cause" data-testid="recovery-cause">
          {r.cause}
        </span>
      </div>
      <ol className="scaling-phases" aria-label={`Phases of the recovery to attempt ${r.attempt}`}>
        {recoveryPhases(r).map((p) => (
          <li key={p.label} className={p.at ? 'done' : 'todo'} title={p.at ?? (p.label === 'failed' ? 'not known' : 'not reached')}>
            <span className="phase-label">{p.label}</span>
            <span className="phase-time">{phaseText(p, r, now)}</span>
          </li>
        ))}
      </ol>
      <dl className="recovery-figures small">
        <div>
          <dt>checkpoint used</dt>
          <dd data-testid="recovery-checkpoint">{recoveryCheckpoint(r, startedFrom)}</dd>
        </div>
        <div title="failure → detected">
          <dt>detection</dt>
          <dd>{formatDuration(t.detectionMs)}</dd>
        </div>
        <div title="detected → every subtask running: stopping the old attempt, backoff, scheduling and restoring state">
          <dt>time to running</dt>
          <dd>{formatDuration(t.recoveryMs)}</dd>
        </div>
        <div title="the longest state load of one subtask">
          <dt>state restore</dt>
          <dd>{formatDuration(t.restoreMs)}</dd>
        </div>
        <div>
          <dt>key groups restored</dt>
          <dd>{formatCount(r.keyGroupsRestored)}</dd>
        </div>
        <div>
          <dt>bytes restored</dt>
          <dd>{formatBytes(r.bytesRestored)}</dd>
        </div>
      </dl>
      {r.reason && r.status !== 'RUNNING' && (
        <div className={`small ${r.status === 'FAILED' ? 'bad-text' : 'muted'}`} data-testid="recovery-reason">
          {r.reason}
        </div>
      )}
    </li>
  );
}

/** The job's recoveries as given (newest first), each with its phases, the checkpoint it used and what it restored. */
export function RecoveryList({ recoveries, now, startedFrom }: { recoveries: readonly Recovery[]; now: number; startedFrom?: StartedFrom }) {
  if (recoveries.length === 0) return <p className="muted">No recovery: no subtask of this job has failed or been lost.</p>;
  return (
    <ol className="scaling-list" aria-label="Recoveries, newest first">
      {recoveries.map((r) => (
        <RecoveryRow key={r.id} r={r} now={now} startedFrom={startedFrom} />
      ))}
    </ol>
  );
}
