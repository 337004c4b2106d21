'use client';
import { useEffect, useRef, useState } from 'react';
import { errorMessage } from '@/lib/api';
import { describeScaling, operatorScaling, statusTone, type SliderLimits } from './scaling';
import { useRescale, useScalingEvents } from './useScaling';

/** Keyboard steps are sent once the keys rest this long, so five arrow presses make one request. */
const KEYBOARD_SETTLE_MS = 600;

/**
 * An operator's parallelism on the job page: drag (or arrow keys) from 1 to its maxParallelism; releasing it sends
 * the rescale. Shows the rescale rolling out, its place in the job's queue, and a refusal inline.
 */
export function ParallelismSlider({ jobId, vertexId, parallelism, limits, enabled }: {
  jobId: string;
  vertexId: string;
  parallelism: number;
  limits: SliderLimits;
  enabled: boolean;
}) {
  const { max: maxParallelism, chain, blocked } = limits;
  const events = useScalingEvents(jobId);
  const rescale = useRescale(jobId);
  const { mine, inFlight, lastFailure } = operatorScaling(events.data ?? [], vertexId);
  const target = mine?.toParallelism ?? parallelism;
  const [draft, setDraft] = useState<number>();
  const settle = useRef<ReturnType<typeof setTimeout>>(undefined);
  useEffect(() => () => clearTimeout(settle.current), []);
  // Until the request answers, the slider stays where it was released.
  const value = draft ?? (rescale.isPending ? rescale.variables[vertexId] : undefined) ?? target;

  const commit = (next: number | undefined) => {
    clearTimeout(settle.current);
    setDraft(undefined);
    if (next === undefined || next === target) return;
    rescale.reset();
    rescale.mutate({ [vertexId]: next });
  };
  const read = (el: HTMLInputElement) => Number(el.value);

  return (
    <div className="op-scale nodrag nopan" data-testid={`scale-${vertexId}`} onClick={(e) => e.stopPropagation()}>
      <label className="op-scale-row">
        <span className="muted">parallelism</span>
        <input
          type="range"
          min={1}
          max={maxParallelism}
          step={1}
          value={value}
          disabled={!enabled || !!blocked}
          aria-label={`Parallelism of ${vertexId}`}
          title={`Release to rescale ${chain.join(' + ')} (1 … ${maxParallelism}); a job's rescales run one at a time, in the order requested`}
          data-testid={`slider-${vertexId}`}
          onChange={(e) => setDraft(read(e.currentTarget))}
          onPointerUp={(e) => commit(read(e.currentTarget))}
          onKeyUp={(e) => {
            const el = e.currentTarget;
            clearTimeout(settle.current);
            settle.current = setTimeout(() => commit(read(el)), KEYBOARD_SETTLE_MS);
          }}
          onBlur={(e) => draft !== undefined && commit(read(e.currentTarget))}
        />
        <output className="op-scale-value" data-testid={`slider-value-${vertexId}`} title={`1 … ${maxParallelism} (maxParallelism)`}>
          {value}
        </output>
      </label>
      {blocked && <div className="op-scale-note muted">cannot rescale: {blocked}</div>}
      {rescale.isPending && <div className="op-scale-note busy">sending ×{rescale.variables?.[vertexId]}…</div>}
      {mine && (
        <div className={`op-scale-note ${statusTone(mine.status)}`} data-testid={`scaling-${vertexId}`} data-status={mine.status}>
          {describeScaling(mine)}
        </div>
      )}
      {!mine && inFlight > 0 && (
        <div className="op-scale-note muted" data-testid={`scaling-queue-${vertexId}`}>
          {inFlight} rescale{inFlight > 1 ? 's' : ''} of this job in flight: a change here queues behind {inFlight > 1 ? 'them' : 'it'} (they run in order)
        </div>
      )}
      {mine && inFlight > 1 && <div className="op-scale-note muted">{inFlight} rescales of this job in flight, run in order</div>}
      {rescale.isError && (
        <div className="op-scale-note bad" role="alert" data-testid={`scale-error-${vertexId}`}>
          {errorMessage(rescale.error)}
        </div>
      )}
      {!rescale.isError && lastFailure && (
        <div className="op-scale-note bad" data-testid={`scale-failed-${vertexId}`}>
          last rescale ×{lastFailure.fromParallelism} → ×{lastFailure.toParallelism} {lastFailure.status === 'FAILED' ? 'failed' : 'rolled back'}
          {lastFailure.reason ? `: ${lastFailure.reason}` : ''}
        </div>
      )}
    </div>
  );
}
