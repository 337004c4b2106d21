'use client';
import type { JobDetail } from '@keyflow/api';
import { graphSchema } from '@keyflow/core';
import { useState } from 'react';
import { ErrorState, Loading } from '@/components/States';
import { formatCount, formatTime } from '@/lib/format';
import { useDeadLetters } from '@/lib/queries';
import { operatorsWithDeadLetters, recordPreview } from './deadLetters';

/** Samples shown before "Show all": the control plane keeps the newest 100 per operator. */
const SHOWN = 10;

/** One operator's dead letters: its running total and the newest samples the control plane keeps, with the reason. */
export function OperatorDeadLetters({ job, vertexId, name, total }: { job: JobDetail; vertexId: string; name: string; total: number }) {
  const live = job.state === 'RUNNING' || job.state === 'RESCALING';
  const letters = useDeadLetters(job.id, vertexId, live);
  const [all, setAll] = useState(false);
  const samples = letters.data ?? [];
  const shown = all ? samples : samples.slice(0, SHOWN);
  return (
    <div className="dead-letter-operator" data-testid={`dead-letter-operator-${vertexId}`}>
      <h3>
        {name} {name !== vertexId && <span className="mono muted small">{vertexId}</span>}{' '}
        <span
          className="badge badge-bad"
          data-testid={`dead-letter-total-${vertexId}`}
          title="dead letters since the job started (a running total, across attempts)"
        >
          {formatCount(total)} in all
        </span>
      </h3>
      {letters.isPending ? (
        <Loading label="Loading dead letters…" />
      ) : letters.data === undefined ? (
        <ErrorState what={`the dead letters of ${vertexId}`} error={letters.error} onRetry={() => void letters.refetch()} />
      ) : samples.length === 0 ? (
        <p className="muted small">No sample kept yet: samples are written with the next metrics report.</p>
      ) : (
        <>
          <table className="table nested dead-letters" aria-label={`Newest dead letters of ${vertexId}`}>
            <thead>
              <tr>
                <th>Time</th>
                <th>Reason</th>
                <th>Record</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((d, i) => {
                const record = recordPreview(d.record);
                return (
                  <tr key={`${d.at}-${i}`} data-testid="dead-letter">
                    <td className="muted small when">{formatTime(new Date(d.at).toISOString())}</td>
                    <td className="bad-text small">{d.reason}</td>
                    <td className="mono small record" title={record.truncated ? record.full : undefined}>
                      {record.text}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          {samples.length > SHOWN && (
            <button type="button" className="link small" onClick={() => setAll(!all)}>
              {all ? `Show the newest ${SHOWN}` : `Show all ${samples.length} kept samples`}
            </button>
          )}
        </>
      )}
    </div>
  );
}

/** Per operator with dead letters: its running total and the newest records it could not process, with the reason. */
export function DeadLetters({ job }: { job: JobDetail }) {
  const parsed = graphSchema.safeParse(job.graph);
  const vertices = parsed.success ? parsed.data.vertices : [];
  const operators = operatorsWithDeadLetters(
    job.metrics,
    vertices.map((v) => v.id),
  );
  return (
    <div data-testid="dead-letters">
      <p className="muted small">
        records an operator could not process (undecodable, lacking its key field, or the operator refused them), newest first
      </p>
      {job.metrics === null ? (
        <p className="muted">No metrics reported yet.</p>
      ) : operators.length === 0 ? (
        <p className="muted">No dead letters: every record was processed.</p>
      ) : (
        operators.map(({ vertexId, total }) => (
          <OperatorDeadLetters
            key={vertexId}
            job={job}
            vertexId={vertexId}
            total={total}
            name={vertices.find((v) => v.id === vertexId)?.name || vertexId}
          />
        ))
      )}
    </div>
  );
}
