'use client';
import { useEffect, useRef, useState } from 'react';
import { useJob, useWorkers } from '@/lib/queries';
import { adviceText, draftAdvice } from './parallelismDraft';
import { RescaleNotes } from './RescaleNotes';
import { operatorScaling, type SliderLimits } from './scaling';
import { freeSlots, heldSlots } from './slots';
import { useRescale, useScalingEvents } from './useScaling';

/** Keyboard steps are sent once the keys rest this long, so five arrow presses make one request. */
const KEYBOARD_SETTLE_MS = 600;

/**
 * An operator's parallelism on the job page: drag (or arrow keys) from 1 to its maxParallelism and release, or type
 * an exact number and press Enter. Before it is sent it says how many slots the value needs and how many are free;
 * after, it stays at the target (the job's desired parallelism) until the job gets there or the request is refused
 * or rolled back.
 */
export function ParallelismSlider({
  jobId,
  vertexId,
  parallelism,
  limits,
  enabled,
}: {
  jobId: string;
  vertexId: string;
  parallelism: number;
  limits: SliderLimits;
  enabled: boolean;
}) {
  const { max, chain, blocked } = limits;
  const job = useJob(jobId);
  const workers = useWorkers();
  const events = useScalingEvents(jobId);
  const rescale = useRescale(jobId);
  const scaling = operatorScaling(events.data ?? [], vertexId);
  // What was released, until the request is answered: the slider never shows the old value meanwhile.
  const [sent, setSent] = useState<number>();
  const target = sent ?? job.data?.desiredParallelism[vertexId] ?? parallelism;
  // The value being dragged or typed, as text (the box shows it), until it is sent or dropped.
  const [draft, setDraft] = useState<{ text: string; typed: boolean }>();
  const settle = useRef<ReturnType<typeof setTimeout>>(undefined);
  useEffect(() => () => clearTimeout(settle.current), []);

  const free = workers.data ? freeSlots(workers.data) + heldSlots(scaling.mine, parallelism) : undefined;
  const advice = draft && draftAdvice(draft.text, { current: parallelism, target, max, free });
  const value = advice && advice.kind !== 'invalid' ? advice.value : target;

  const commit = (next: number) => {
    clearTimeout(settle.current);
    setDraft(undefined);
    if (next === target) return;
    rescale.reset();
    setSent(next);
    rescale.mutate({ [vertexId]: next }, { onSettled: () => setSent(undefined) });
  };
  const slide = (el: HTMLInputElement) => setDraft({ text: el.value, typed: false });

  return (
    <div className="op-scale nodrag nopan" data-testid={`scale-${vertexId}`} onClick={(e) => e.stopPropagation()}>
      <div className="op-scale-row">
        <span className="muted">parallelism</span>
        <input
          type="range"
          min={1}
          max={max}
          step={1}
          value={value}
          disabled={!enabled || !!blocked}
          aria-label={`Parallelism of ${vertexId}`}
          title={`Release to rescale ${chain.join(' + ')} (1 … ${max}); a job's rescales run one at a time, in the order requested`}
          data-testid={`slider-${vertexId}`}
          onChange={(e) => slide(e.currentTarget)}
          onPointerUp={(e) => commit(Number(e.currentTarget.value))}
          onKeyUp={(e) => {
            const el = e.currentTarget;
            clearTimeout(settle.current);
            settle.current = setTimeout(() => commit(Number(el.value)), KEYBOARD_SETTLE_MS);
          }}
          onBlur={(e) => draft && !draft.typed && commit(Number(e.currentTarget.value))}
        />
        <input
          type="text"
          inputMode="numeric"
          className="op-scale-input"
          value={draft?.text ?? String(target)}
          disabled={!enabled || !!blocked}
          aria-label={`Exact parallelism of ${vertexId}`}
          aria-invalid={advice?.kind === 'invalid'}
          title={`Type a parallelism from 1 to ${max}, then Enter`}
          data-testid={`parallelism-input-${vertexId}`}
          onChange={(e) => setDraft({ text: e.currentTarget.value, typed: true })}
          onKeyDown={(e) => {
            if (e.key === 'Escape') setDraft(undefined);
            if (e.key === 'Enter' && advice && advice.kind !== 'invalid') commit(advice.value);
          }}
          // A typed value is sent with Enter only: leaving the box drops it.
          onBlur={() => draft?.typed && setDraft(undefined)}
        />
      </div>
      {advice && (
        <div
          className={`op-scale-note ${advice.kind === 'invalid' ? 'bad' : advice.kind === 'short' ? 'warn' : 'muted'}`}
          role={advice.kind === 'invalid' || advice.kind === 'short' ? 'alert' : undefined}
          data-testid={`scale-advice-${vertexId}`}
          data-kind={advice.kind}
        >
          {adviceText(advice, draft?.typed ? 'Enter' : 'release')}
        </div>
      )}
      <RescaleNotes
        vertexId={vertexId}
        parallelism={parallelism}
        target={target}
        sending={sent}
        scaling={scaling}
        blocked={blocked}
        rescale={rescale}
      />
    </div>
  );
}

/** An operator's parallelism for someone who may not rescale (a viewer): the value, and the range it could take. */
export function ParallelismReadOnly({ vertexId, parallelism, max }: { vertexId: string; parallelism: number; max: number }) {
  return (
    <div className="op-scale op-scale-readonly" data-testid={`parallelism-readonly-${vertexId}`} title="Rescaling needs the operator role">
      <span className="muted">parallelism</span> <strong>{parallelism}</strong> <span className="muted small">(1 … {max})</span>
    </div>
  );
}
