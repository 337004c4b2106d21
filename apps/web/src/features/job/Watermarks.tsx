'use client';
import type { JobDetail } from '@keyflow/api';
import { graphSchema, ownClockVertices } from '@keyflow/core';
import { useMemo, useState } from 'react';
import { formatCount } from '@/lib/format';
import { useNow } from '@/lib/useNow';
import { OperatorLateRecords } from './LateRecords';
import {
  DEFAULT_WATERMARK_SORT,
  formatLag,
  formatWatermark,
  nextSort,
  OWN_CLOCK_HELP,
  sortWatermarkRows,
  STATUS_TEXT,
  watermarkRows,
  type WatermarkColumn,
  type WatermarkRow,
} from './watermarks';

const COLUMNS: { id: WatermarkColumn; title: string; help: string }[] = [
  { id: 'operator', title: 'Operator', help: 'the operator, in the graph’s order' },
  { id: 'subtask', title: 'Subtask', help: 'the subtask’s index' },
  { id: 'watermark', title: 'Watermark', help: 'the event time it has reached (a source: its output; others: the minimum over their inputs)' },
  { id: 'lag', title: 'Lag', help: 'how far its watermark trails the wall clock' },
  { id: 'status', title: 'Status', help: 'idle: no input for a while, it holds no watermark back' },
  { id: 'late', title: 'Late records', help: 'records its windows took too late, in its latest metrics report' },
];

function WatermarkCell({ row }: { row: WatermarkRow }) {
  if (row.status === 'ended') return <>{STATUS_TEXT.ended}</>;
  if (row.watermark === null) return <span className="muted">—</span>;
  const { time, date } = formatWatermark(row.watermark);
  return (
    <span className={row.status === 'idle' ? 'muted' : undefined} title={date}>
      {time}
    </span>
  );
}

/**
 * Every subtask's watermark, its lag behind the wall clock, whether it is idle and its late records; sorted by lag
 * at first, so the subtask holding the job back is on top. Below, the late records of each window operator.
 */
export function Watermarks({ job }: { job: JobDetail }) {
  const now = useNow();
  const [sort, setSort] = useState(DEFAULT_WATERMARK_SORT);
  // The graph is the job's for good: parsed, and walked for its generated clocks, once, not at every tick of `now`.
  const { vertices, ownClock } = useMemo(() => {
    const parsed = graphSchema.safeParse(job.graph);
    return parsed.success
      ? { vertices: parsed.data.vertices, ownClock: ownClockVertices(parsed.data) }
      : { vertices: [], ownClock: new Set<string>() };
  }, [job.graph]);
  const name = (id: string) => vertices.find((v) => v.id === id)?.name || id;
  const rows = sortWatermarkRows(
    watermarkRows(job.metrics, now, ownClock),
    sort,
    vertices.map((v) => v.id),
  );
  const withLate = vertices.filter((v) => v.type === 'window' || (job.metrics?.vertices[v.id]?.lateRecords ?? 0) > 0);
  return (
    <div data-testid="watermarks">
      <p className="muted small">event time per subtask: the watermark it has reached and how far it trails the wall clock; click a column to sort</p>
      {rows.length === 0 ? (
        <p className="muted">{job.metrics === null ? 'No metrics reported yet.' : 'No subtask reports metrics right now.'}</p>
      ) : (
        <table className="table watermarks" data-testid="watermark-table">
          <thead>
            <tr>
              {COLUMNS.map((c) => (
                <th key={c.id} aria-sort={sort.column === c.id ? (sort.descending ? 'descending' : 'ascending') : 'none'} title={c.help}>
                  <button type="button" className="link sort" data-testid={`sort-${c.id}`} onClick={() => setSort(nextSort(sort, c.id))}>
                    {c.title}
                    {sort.column === c.id && <span aria-hidden>{sort.descending ? ' ▾' : ' ▴'}</span>}
                  </button>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr
                key={`${r.vertexId}#${r.index}`}
                data-testid="watermark-row"
                data-vertex={r.vertexId}
                data-index={r.index}
                data-status={r.status}
                data-watermark={r.watermark ?? undefined}
              >
                <td>
                  {name(r.vertexId)} {name(r.vertexId) !== r.vertexId && <span className="mono muted small">{r.vertexId}</span>}
                </td>
                <td className="mono">#{r.index}</td>
                <td className="mono">
                  <WatermarkCell row={r} />
                </td>
                <td className="mono" data-testid="watermark-lag">
                  {r.lag === undefined ? (
                    <span className="muted">—</span>
                  ) : r.ownClock ? (
                    <span className="muted" title={OWN_CLOCK_HELP}>
                      own clock
                    </span>
                  ) : (
                    formatLag(r.lag)
                  )}
                </td>
                <td>
                  <span className={`wm-status wm-${r.status}`}>{STATUS_TEXT[r.status]}</span>
                </td>
                <td>{formatCount(r.lateRecords)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {withLate.map((v) => (
        <OperatorLateRecords key={v.id} job={job} vertexId={v.id} name={name(v.id)} total={job.metrics?.vertices[v.id]?.lateRecords ?? 0} />
      ))}
    </div>
  );
}
