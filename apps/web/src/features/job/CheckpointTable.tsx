'use client';
import type { CheckpointDetail } from '@keyflow/api';
import { Fragment, useState } from 'react';
import { StateBadge } from '@/components/StateBadge';
import { formatBytes, formatDuration, formatTime } from '@/lib/format';

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

/** Flink's checkpoint counts: triggered, in progress, completed, failed, and the latest completed one. */
export function CheckpointSummary({ checkpoints }: { checkpoints: CheckpointDetail[] }) {
  const count = (s: CheckpointDetail['status']) => checkpoints.filter((c) => c.status === s).length;
  const latest = checkpoints.find((c) => c.status === 'COMPLETED');
  return (
    <dl className="stats" data-testid="checkpoint-counts">
      <div>
        <dt>Triggered</dt>
        <dd>{checkpoints.length}</dd>
      </div>
      <div>
        <dt>In progress</dt>
        <dd>{count('PENDING')}</dd>
      </div>
      <div>
        <dt>Completed</dt>
        <dd data-testid="completed-count">{count('COMPLETED')}</dd>
      </div>
      <div>
        <dt>Failed</dt>
        <dd className={count('FAILED') ? 'bad-text' : undefined}>{count('FAILED')}</dd>
      </div>
      <div>
        <dt>Latest completed</dt>
        <dd>{latest ? `#${latest.number} · ${formatDuration(latest.durationMs)} · ${formatBytes(latest.bytes)}` : '—'}</dd>
      </div>
    </dl>
  );
}

/** The checkpoint history with Flink's columns; a row opens its per-subtask acknowledgements. */
export function CheckpointTable({ checkpoints }: { checkpoints: CheckpointDetail[] }) {
  const [open, setOpen] = useState<number>();
  if (checkpoints.length === 0) return <p className="muted">No checkpoint yet.</p>;
  return (
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
        {checkpoints.map((c) => (
          <Fragment key={c.id}>
            <tr
              className={`clickable status-${c.status.toLowerCase()}`}
              data-testid="checkpoint-row"
              data-status={c.status}
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
                <StateBadge state={c.status === 'FAILED' ? 'FAILED' : c.status} />
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
  );
}
