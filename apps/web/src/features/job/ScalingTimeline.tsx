'use client';
import type { ScalingEvent } from '@keyflow/api';
import { Loading, ErrorState } from '@/components/States';
import { formatBytes, formatCount, formatDuration, formatTime } from '@/lib/format';
import { checkpointName } from './checkpointName';
import { describeScaling, PHASE_LEGEND, resumedEventId, scalingOutcome, scalingPhases, statusTone } from './scaling';
import { useScalingEvents } from './useScaling';

function ScalingRow({ e, resumedBy }: { e: ScalingEvent; resumedBy: number | undefined }) {
  const phases = scalingPhases(e);
  const chained = e.chainVertices.filter((v) => v !== e.vertexId);
  const tone = statusTone(e.status);
  const resumes = resumedEventId(e);
  const checkpoint = checkpointName(e);
  return (
    <li id={`scaling-${e.id}`} className={`scaling-event tone-${tone}`} data-testid="scaling-event" data-status={e.status} data-vertex={e.vertexId}>
      <div className="scaling-head">
        <strong>#{e.id}</strong> <span className="mono">{e.vertexId}</span>
        {chained.length > 0 && <span className="muted small"> (with its chain: {chained.join(', ')})</span>}{' '}
        <span className="scaling-change">{describeScaling(e)}</span>{' '}
        <span className={`scaling-status ${tone}`} data-testid="scaling-status">
          {e.status}
        </span>
        {resumes !== undefined && (
          <a className="scaling-link small" href={`#scaling-${resumes}`}>
            resumes #{resumes}
          </a>
        )}
        {resumedBy !== undefined && (
          <a className="scaling-link small" href={`#scaling-${resumedBy}`}>
            resumed by #{resumedBy}
          </a>
        )}
      </div>
      <ol className="scaling-phases" aria-label="Phases, in the order they happened">
        {phases.map((p) => (
          <li key={p.label} className={p.at ? 'done' : 'todo'} title={p.at ?? 'not reached'}>
            <span className="phase-label">{p.label}</span>
            <span className="phase-time">{p.at ? (p.label === 'requested' ? formatTime(p.at) : `+${formatDuration(p.sinceRequestMs)}`) : '—'}</span>
          </li>
        ))}
      </ol>
      <div className="scaling-figures small">
        <span>key groups moved {formatCount(e.keyGroupsMoved)}</span>
        <span>bytes moved {formatBytes(e.bytesMoved)}</span>
        <span title={`${e.vertexId}'s pause: from its barrier aligned to its new subtasks running; nothing else stops`}>
          pause {formatDuration(e.pauseMs)}
        </span>
        {checkpoint && <span data-testid="scaling-checkpoint">{checkpoint}</span>}
      </div>
      {e.reason && (
        <div className={`small ${tone === 'bad' ? 'bad-text' : tone === 'warn' ? 'warn-text' : 'muted'}`} data-testid="scaling-reason">
          {tone === 'bad' || tone === 'warn' ? scalingOutcome(e) : e.reason}
        </div>
      )}
    </li>
  );
}

/** Every rescale of the job, newest first, with its phases and their times, live through `scaling:event`. */
export function ScalingTimeline({ jobId }: { jobId: string }) {
  const events = useScalingEvents(jobId);
  // An interrupted rescale points at the event that carries it on, once the job runs again.
  const resumedBy = new Map(
    (events.data ?? []).flatMap((e) => {
      const resumes = resumedEventId(e);
      return resumes === undefined ? [] : [[resumes, e.id] as const];
    }),
  );
  return (
    <section className="card" data-testid="scaling-timeline">
      <h2>
        Rescales{' '}
        <span className="muted small" data-testid="scaling-legend">
          {PHASE_LEGEND}; each rescale lists them in the order they happened (new owners go on without waiting for the others or the checkpoint); a
          job's rescales run one after another
        </span>
      </h2>
      {events.isPending ? (
        <Loading label="Loading rescales…" />
      ) : events.data === undefined ? (
        <ErrorState what="the rescales" error={events.error} onRetry={() => void events.refetch()} />
      ) : events.data.length === 0 ? (
        <p className="muted">No rescale yet: drag an operator's parallelism slider on the graph, or type its parallelism.</p>
      ) : (
        <ol className="scaling-list">
          {events.data.map((e) => (
            <ScalingRow key={e.id} e={e} resumedBy={resumedBy.get(e.id)} />
          ))}
        </ol>
      )}
    </section>
  );
}
