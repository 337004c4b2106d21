'use client';
import type { JobDetail } from '@keyflow/api';
import { graphSchema, operatorSpec } from '@keyflow/core';
import { ErrorState, Loading } from '@/components/States';
import { deliveryOf } from '@/features/builder/builderGraph';
import { formatTime } from '@/lib/format';
import { useSample } from '@/lib/queries';

const SHOWN = 12;

function LogSample({ jobId, vertexId, live }: { jobId: string; vertexId: string; live: boolean }) {
  const sample = useSample(jobId, vertexId, live);
  if (sample.isPending) return <Loading label="Loading records…" />;
  if (sample.data === undefined) return <ErrorState what="the sample" error={sample.error} onRetry={() => void sample.refetch()} />;
  if (sample.data.length === 0) return <p className="muted">No record has reached {vertexId} yet.</p>;
  return (
    <table className="table nested sample" data-testid={`sample-${vertexId}`}>
      <tbody>
        {sample.data.slice(0, SHOWN).map((s, i) => (
          <tr key={`${s.at}-${i}`}>
            <td className="muted small">{formatTime(new Date(s.at).toISOString())}</td>
            <td className="mono small">{JSON.stringify(s.record)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** What the sinks write: the latest records a log sink kept, and where the others write and with which guarantee. */
export function SinkSamples({ job }: { job: JobDetail }) {
  const parsed = graphSchema.safeParse(job.graph);
  const sinks = parsed.success ? parsed.data.vertices.filter((v) => operatorSpec(v.type)?.kind === 'sink') : [];
  const live = job.state === 'RUNNING' || job.state === 'RESCALING';
  if (sinks.length === 0) return <p className="muted">This job has no sink.</p>;
  return (
    <div className="sinks">
      {sinks.map((v) => {
        const delivery = job.sinkGuarantees[v.id] ?? deliveryOf(v);
        return (
          <section key={v.id}>
            <h3>
              {v.name || v.id}{' '}
              <span className="muted small">
                ({v.type}, {delivery})
              </span>
            </h3>
            {v.type === 'log' ? (
              <LogSample jobId={job.id} vertexId={v.id} live={live} />
            ) : v.type === 'postgres' ? (
              <p className="muted small">
                Upserts the latest value per key into table <code>{String(v.settings.table)}</code> of the control plane’s database
                {delivery === 'exactly-once' ? ', when each checkpoint completes.' : '.'}
              </p>
            ) : null}
          </section>
        );
      })}
    </div>
  );
}
