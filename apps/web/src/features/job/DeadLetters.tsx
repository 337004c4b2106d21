'use client';
import type { JobDetail } from '@keyflow/api';
import { graphSchema } from '@keyflow/core';
import type { UseQueryResult } from '@tanstack/react-query';
import { useState } from 'react';
import { ErrorState, Loading } from '@/components/States';
import { formatCount, formatTime } from '@/lib/format';
import type { api } from '@/lib/api';
import { useDeadLetters } from '@/lib/queries';
import { operatorsWithDeadLetters, recordPreview } from './deadLetters';

/** A sampled record with why it was set aside: a dead letter or a late record. */
type RecordSample = Awaited<ReturnType<typeof api.deadLetters>>[number];

/** Samples shown before "Show all": the control plane keeps the newest 100 per operator. */
const SHOWN = 10;

/** What one kind of sampled records (dead letters, late records) is called, and the test ids of its parts. */
export interface SampleKind {
  /** "dead letters": headings and messages. */
  noun: string;
  /** "dead-letter": the prefix of its test ids. */
  testId: string;
  /** What the running total counts, for its tooltip. */
  totalHelp: string;
  /** The total's badge: records lost to a fault are bad news, late ones a warning. */
  tone: 'bad' | 'warn';
}

const DEAD_LETTERS: SampleKind = {
  noun: 'dead letters',
  testId: 'dead-letter',
  totalHelp: 'dead letters since the job started (a running total, across attempts)',
  tone: 'bad',
};

/** One operator's sampled records of one kind: its running total and the newest samples the control plane keeps, with the reason. */
export function OperatorSamples({
  kind,
  samples: query,
  vertexId,
  name,
  total,
}: {
  kind: SampleKind;
  samples: UseQueryResult<RecordSample[]>;
  vertexId: string;
  name: string;
  total: number;
}) {
  const [all, setAll] = useState(false);
  const samples = query.data ?? [];
  const shown = all ? samples : samples.slice(0, SHOWN);
  return (
    <div className="dead-letter-operator" data-testid={`${kind.testId}-operator-${vertexId}`}>
      <h3>
        {name} {name !== vertexId && <span className="mono muted small">{vertexId}</span>}{' '}
        <span className={`badge badge-${kind.tone}`} data-testid={`${kind.testId}-total-${vertexId}`} title={kind.totalHelp}>
          {formatCount(total)} in all
        </span>
      </h3>
      {query.isPending ? (
        <Loading label={`Loading ${kind.noun}…`} />
      ) : query.data === undefined ? (
        <ErrorState what={`the ${kind.noun} of ${vertexId}`} error={query.error} onRetry={() => void query.refetch()} />
      ) : samples.length === 0 ? (
        <p className="muted small">No sample kept yet: samples are written with the next metrics report.</p>
      ) : (
        <>
          <table className="table nested dead-letters" aria-label={`Newest ${kind.noun} of ${vertexId}`}>
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
                  <tr key={`${d.at}-${i}`} data-testid={kind.testId}>
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

/** One operator's dead letters: its running total and the newest samples the control plane keeps, with the reason. */
export function OperatorDeadLetters({ job, vertexId, name, total }: { job: JobDetail; vertexId: string; name: string; total: number }) {
  const live = job.state === 'RUNNING' || job.state === 'RESCALING';
  const letters = useDeadLetters(job.id, vertexId, live);
  return <OperatorSamples kind={DEAD_LETTERS} samples={letters} vertexId={vertexId} name={name} total={total} />;
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
