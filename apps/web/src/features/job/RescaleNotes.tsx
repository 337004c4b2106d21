'use client';
import { useState } from 'react';
import { errorMessage } from '@/lib/api';
import { describeScaling, scalingOutcome, statusTone, type OperatorScaling } from './scaling';

/** A note that can be closed; its text stays on two lines (all of it in the tooltip), so the node keeps its size. */
function Dismissable({ tone, testId, text, onDismiss }: { tone: string; testId: string; text: string; onDismiss: () => void }) {
  return (
    <div className={`op-scale-note dismissable ${tone}`} role="alert" data-testid={testId}>
      <span className="clamp" title={text}>
        {text}
      </span>
      <button type="button" className="link dismiss" aria-label="Dismiss" title="Dismiss" onClick={onDismiss}>
        ×
      </button>
    </div>
  );
}

/**
 * What an operator's slider says about its rescales: the target until the job reaches it, the rescale under way,
 * the queue ahead, and a refusal, rollback or interruption (each can be dismissed).
 */
export function RescaleNotes({
  vertexId,
  parallelism,
  target,
  sending,
  scaling,
  blocked,
  rescale,
}: {
  vertexId: string;
  parallelism: number;
  target: number;
  sending: number | undefined;
  scaling: OperatorScaling;
  blocked: string | undefined;
  rescale: { isError: boolean; error: unknown; reset: () => void };
}) {
  const { mine, inFlight, lastProblem } = scaling;
  const [dismissed, setDismissed] = useState<number>();
  const problem = lastProblem && lastProblem.id !== dismissed ? lastProblem : undefined;
  return (
    <>
      {blocked && <div className="op-scale-note muted">cannot rescale: {blocked}</div>}
      {target !== parallelism && (
        <div
          className="op-scale-note op-scale-target"
          data-testid={`target-${vertexId}`}
          title={`Runs at ×${parallelism}; converges to ×${target}, as asked`}
        >
          ×{parallelism} → <strong>×{target}</strong> target
        </div>
      )}
      {sending !== undefined && <div className="op-scale-note busy">sending ×{sending}…</div>}
      {mine && (
        <div className={`op-scale-note ${statusTone(mine.status)}`} data-testid={`scaling-${vertexId}`} data-status={mine.status}>
          #{mine.id} {describeScaling(mine)}
        </div>
      )}
      {!mine && inFlight > 0 && (
        <div className="op-scale-note muted" data-testid={`scaling-queue-${vertexId}`}>
          {inFlight} rescale{inFlight > 1 ? 's' : ''} of this job in flight: a change here queues behind {inFlight > 1 ? 'them' : 'it'}
        </div>
      )}
      {mine && inFlight > 1 && <div className="op-scale-note muted">{inFlight} rescales of this job in flight, run in order</div>}
      {rescale.isError && <Dismissable tone="bad" testId={`scale-error-${vertexId}`} text={errorMessage(rescale.error)} onDismiss={rescale.reset} />}
      {!rescale.isError && problem && (
        <Dismissable
          tone={statusTone(problem.status)}
          testId={`scale-failed-${vertexId}`}
          text={`#${problem.id} ×${problem.fromParallelism} → ×${problem.toParallelism} ${scalingOutcome(problem)}`}
          onDismiss={() => setDismissed(problem.id)}
        />
      )}
    </>
  );
}
