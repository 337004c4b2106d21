'use client';
import type { ScalingEvent } from '@keyflow/api';
import { Loading, ErrorState } from '@/components/States';
import { formatBytes, formatCount, formatDuration, formatTime } from '@/lib/format';
import { describeScaling, isScalingInFlight, scalingPhases, statusTone } from './scaling';
import { useScalingEvents } from './useScaling';

function ScalingRow({ e }: { e: ScalingEvent }) {
  const phases = scalingPhases(e);
  const chained = e.chainVertices.filter((v) => v !== e.vertexId);
  return (
    <li className={`scaling-event tone-${statusTone(e.status)}`} data-testid="scaling-event" data-status={e.status} data-vertex={e.vertexId}>
      <div className="scaling-head">
        <strong>#{e.id}</strong> <span className="mono">{e.vertexId}</span>
        {chained.length > 0 && <span className="muted small"> (with its chain: {chained.join(', ')})</span>}{' '}
        <span className="scaling-change">{describeScaling(e)}</span>{' '}
        <span className={`scaling-status ${statusTone(e.status)}`} data-testid="scaling-status">
          {e.status}
        </span>
      </div>
      <ol className="scaling-phases">
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
        <span title={`${e.vertexId}'s pause: from its barrier aligned to its new subtasks running; nothing else stops`}>pause {formatDuration(e.pauseMs)}</span>
        {e.checkpointId !== null && <span>checkpoint {e.checkpointId}</span>}
      </div>
      {e.reason && !isScalingInFlight(e.status) && e.status !== 'COMPLETED' && (
        <div className="bad-text small" data-testid="scaling-reason">
          {e.status === 'FAILED' ? 'Failed' : 'Rolled back'}: {e.reason}
        </div>
      )}
    </li>
  );
}

/** Every rescale of the job, newest first, with its phases and their times, live through `scaling:event`. */
export function ScalingTimeline({ jobId }: { jobId: string }) {
  const events = useScalingEvents(jobId);
  return (
    <section className="card" data-testid="scaling-timeline">
      <h2>
        Rescales <span className="muted small">requested → new subtasks started → barrier aligned → snapshot → state restored → running; a job's rescales run one after another, in order</span>
      </h2>
      {events.isPending ? (
        <Loading label="Loading rescales…" />
      ) : events.data === undefined ? (
        <ErrorState what="the rescales" error={events.error} onRetry={() => void events.refetch()} />
      ) : events.data.length === 0 ? (
        <p className="muted">No rescale yet: drag an operator's parallelism slider on the graph.</p>
      ) : (
        <ol className="scaling-list">
          {events.data.map((e) => (
            <ScalingRow key={e.id} e={e} />
          ))}
        </ol>
      )}
    </section>
  );
}
