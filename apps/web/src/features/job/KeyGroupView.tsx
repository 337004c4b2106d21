'use client';
import type { KeyGroupView as View } from '@keyflow/api';
import { ErrorState, Loading } from '@/components/States';
import { formatCount } from '@/lib/format';
import { keyGroupOwners, subtaskColor } from './scaling';
import { useKeyGroups } from './useScaling';

const CHART_HEIGHT = 90;

function KeyGroupChart({ view }: { view: View }) {
  const owners = keyGroupOwners(view.subtasks, view.maxParallelism);
  const max = Math.max(1, ...view.records);
  const width = 100 / view.maxParallelism;
  return (
    <svg
      className="kg-chart"
      viewBox={`0 0 100 ${CHART_HEIGHT}`}
      preserveAspectRatio="none"
      role="img"
      aria-label={`records per key group of ${view.vertexId}`}
    >
      {owners.map((owner, g) => {
        const h = ((view.records[g] ?? 0) / max) * (CHART_HEIGHT - 2);
        return (
          <rect key={g} x={g * width} y={CHART_HEIGHT - Math.max(h, 0.5)} width={width * 0.85} height={Math.max(h, 0.5)} fill={subtaskColor(owner)}>
            <title>{`key group ${g} · subtask ${owner} · ${formatCount(view.records[g] ?? 0)} records`}</title>
          </rect>
        );
      })}
    </svg>
  );
}

function OperatorKeyGroups({ view }: { view: View }) {
  const total = view.subtasks.reduce((sum, s) => sum + s.records, 0);
  return (
    <div className="kg-operator" data-testid={`key-groups-${view.vertexId}`} data-parallelism={view.parallelism}>
      <h3>
        <span className="mono">{view.vertexId}</span>{' '}
        <span className="muted small">
          ×{view.parallelism} · {view.maxParallelism} key groups · records per key group since the start
        </span>
      </h3>
      <KeyGroupChart view={view} />
      <table className="table nested kg-table">
        <thead>
          <tr>
            <th>Subtask</th>
            <th>Key groups</th>
            <th>Records</th>
            <th>Share</th>
          </tr>
        </thead>
        <tbody>
          {view.subtasks.map((s) => (
            <tr key={s.index} data-testid="key-group-subtask">
              <td>
                <span className="swatch" style={{ background: subtaskColor(s.index) }} /> {view.vertexId}#{s.index}
              </td>
              <td className="mono" data-testid="key-group-range">
                {s.start}–{s.end}
              </td>
              <td>{formatCount(s.records)}</td>
              <td>{total ? `${Math.round((s.records / total) * 100)}%` : '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Each keyed operator's key groups: which subtask owns which range, and the records per key group, so skew shows. */
export function KeyGroups({ jobId, live }: { jobId: string; live: boolean }) {
  const views = useKeyGroups(jobId, live);
  if (views.isPending) return <Loading label="Loading key groups…" />;
  if (views.data === undefined) return <ErrorState what="the key groups" error={views.error} onRetry={() => void views.refetch()} />;
  if (views.data.length === 0) return <p className="muted">This job has no keyed operator.</p>;
  return (
    <>
      {views.data.map((v) => (
        <OperatorKeyGroups key={v.vertexId} view={v} />
      ))}
    </>
  );
}
