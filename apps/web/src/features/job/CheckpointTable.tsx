'use client';
import type { CheckpointDetail, CheckpointCounts as ServerCheckpointCounts } from '@keyflow/api';
import { Fragment, useState } from 'react';
import { StateBadge } from '@/components/StateBadge';
import { formatBytes, formatDuration, formatTime } from '@/lib/format';
import { checkpointCounts } from './checkpointCounts';

function Acks({ checkpoint }: { checkpoint: CheckpointDetail }) {
  if (checkpoint.acks.length === 0)
    return <p className="muted small">{checkpoint.status === 'PENDING' ? 'No subtask has acknowledged yet.' : 'No acknowledgement was recorded.'}</p>;
  const acks = [...checkpoint.acks].sort((a, b) => a.vertexId.localeCompare(b.vertexId) || a.subtaskIndex - b.subtaskIndex);
  const start = new Date(checkpoint.triggeredAt).getTime();
  return (
    <table className="table nested" data-testid="checkpoint-acks">
      <thead>
        <tr>
          <th>Operator</th>
          <th>Subtask</th>
          <th>Acknowledged</th>
          <th>End to end</th>
          <th>Alignment</th>
          <th>Sync</th>
          <th>Async</th>
          <th>State size</th>
        </tr>
      </thead>
      <tbody>
        {acks.map((a) => (
          <tr key={`${a.vertexId}#${a.subtaskIndex}`}>
            <td>{a.vertexId}</td>
            <td>{a.subtaskIndex}</td>
            <td>{formatTime(a.ackedAt)}</td>
            <td>{formatDuration(new Date(a.ackedAt).getTime() - start)}</td>
            <td>{formatDuration(a.alignmentMs)}</td>
            <td>{formatDuration(a.syncMs)}</td>
            <td>{formatDuration(a.asyncMs)}</td>
            <td>{formatBytes(a.bytes)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Flink's checkpoint counts (every checkpoint, not only the rows kept), and the latest completed one. */
export function CheckpointSummary({ checkpoints, counts }: { checkpoints: CheckpointDetail[]; counts?: ServerCheckpointCounts }) {
  const { triggered, inProgress, completed, failed, unlisted } = checkpointCounts(checkpoints, counts);
  const latest = checkpoints.find((c) => c.status === 'COMPLETED' || c.status === 'DISCARDED');
  return (
    <>
      <dl className="stats" data-testid="checkpoint-counts">
        <div>
          <dt>Triggered</dt>
          <dd data-testid="triggered-count">{triggered}</dd>
        </div>
        <div>
          <dt>In progress</dt>
          <dd>{inProgress}</dd>
        </div>
        <div title="Kept, let go by retention (discarded), or savepoints deleted since">
          <dt>Completed</dt>
          <dd data-testid="completed-count">{completed}</dd>
        </div>
        <div>
          <dt>Failed</dt>
          <dd className={failed ? 'bad-text' : undefined} data-testid="failed-count">
            {failed}
          </dd>
        </div>
        <div>
          <dt>Latest completed</dt>
          <dd>{latest ? `#${latest.number} · ${formatDuration(latest.durationMs)} · ${formatBytes(latest.bytes)}` : '—'}</dd>
        </div>
      </dl>
      {unlisted > 0 && (
        <p className="muted small" data-testid="checkpoint-counts-note">
          Completed and failed count the newest {checkpoints.length} checkpoints the history lists; the {unlisted} before them are not counted.
        </p>
      )}
    </>
  );
}

/** Rows the history shows until asked for all of them (it keeps up to 100, discarded ones included). */
const SHOWN = 20;

/** The checkpoint history with Flink's columns, newest first; a row opens its per-subtask acknowledgements. */
export function CheckpointTable({ checkpoints }: { checkpoints: CheckpointDetail[] }) {
  const [open, setOpen] = useState<number>();
  const [all, setAll] = useState(false);
  if (checkpoints.length === 0) return <p className="muted">No checkpoint yet.</p>;
  const rows = all ? checkpoints : checkpoints.slice(0, SHOWN);
  return (
    <>
      <table className="table checkpoints" data-testid="checkpoint-table">
        <thead>
          <tr>
            <th>ID</th>
            <th>Status</th>
            <th>Acknowledged</th>
            <th>Trigger time</th>
            <th>End to end duration</th>
            <th>Checkpointed data size</th>
            <th>Alignment</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((c) => (
            <Fragment key={c.id}>
              <tr
                className={`clickable status-${c.status.toLowerCase()}`}
                data-testid="checkpoint-row"
                data-status={c.status}
                data-number={c.number}
                data-kind={c.kind}
                aria-expanded={open === c.id}
                tabIndex={0}
                onClick={() => setOpen(open === c.id ? undefined : c.id)}
                onKeyDown={(e) => (e.key === 'Enter' || e.key === ' ') && (e.preventDefault(), setOpen(open === c.id ? undefined : c.id))}
              >
                <td>
                  <span className="caret">{open === c.id ? '▾' : '▸'}</span> {c.number}
                  {c.kind !== 'PERIODIC' && <span className="kind-tag">{c.kind.toLowerCase()}</span>}
                </td>
                <td>
                  <StateBadge state={c.status} />
                </td>
                <td>
                  <span className="progress" aria-hidden>
                    <span style={{ width: `${c.totalSubtasks ? (100 * Math.min(c.acknowledged, c.totalSubtasks)) / c.totalSubtasks : 0}%` }} />
                  </span>
                  {c.acknowledged}/{c.totalSubtasks}
                </td>
                <td>{formatTime(c.triggeredAt)}</td>
                <td>{formatDuration(c.durationMs)}</td>
                <td>{formatBytes(c.bytes)}</td>
                <td>{formatDuration(c.alignmentMs)}</td>
              </tr>
              {c.failureReason && (
                <tr className="failure">
                  <td />
                  <td colSpan={6} className="bad-text small">
                    {c.failureReason}
                  </td>
                </tr>
              )}
              {open === c.id && (
                <tr className="detail">
                  <td colSpan={7}>
                    <Acks checkpoint={c} />
                  </td>
                </tr>
              )}
            </Fragment>
          ))}
        </tbody>
      </table>
      {checkpoints.length > SHOWN && (
        <button type="button" className="link small" onClick={() => setAll(!all)} data-testid="checkpoint-history-toggle">
          {all ? `Show the newest ${SHOWN}` : `Show all ${checkpoints.length}`}
        </button>
      )}
    </>
  );
}
