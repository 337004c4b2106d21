'use client';
import type { Checkpoint } from '@keyflow/api';
import { formatBytes, formatDuration, formatTime } from '@/lib/format';

const W = 720;
const H = 180;
const PAD = { left: 56, right: 60, top: 14, bottom: 26 };
const SHOWN = 30;
/** Slots on the axis: at least this many, so a few bars stay thin and their numbers readable. */
const MIN_SLOTS = 12;

/** Round axis maxima: 1, 2, 5 × 10^n. */
function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return ([1, 2, 5, 10].find((m) => m * p >= v) ?? 10) * p;
}

/**
 * The last checkpoints as a chart: a bar per checkpoint for its end-to-end duration, a line for its size; failed
 * ones in red, discarded ones (completed, state let go by retention) paler.
 */
export function CheckpointTimeline({ checkpoints }: { checkpoints: Checkpoint[] }) {
  const shown = [...checkpoints].sort((a, b) => a.number - b.number).slice(-SHOWN);
  if (shown.length === 0)
    return <div className="chart-empty muted">No checkpoint yet: the first one is triggered after the checkpoint interval.</div>;
  const maxMs = niceMax(Math.max(...shown.map((c) => c.durationMs ?? 0)));
  const largest = Math.max(...shown.map((c) => c.bytes));
  const maxBytes = largest > 1024 ? niceMax(largest / 1024) * 1024 : niceMax(largest);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / Math.max(MIN_SLOTS, shown.length);
  const barW = Math.max(4, slot * 0.6);
  const x = (i: number) => PAD.left + i * slot + (slot - barW) / 2;
  const yMs = (ms: number) => PAD.top + plotH - (ms / maxMs) * plotH;
  const yBytes = (b: number) => PAD.top + plotH - (b / maxBytes) * plotH;
  // A discarded checkpoint completed (retention let its state go later): its duration and size still count.
  const sized = shown.map((c, i) => ({ c, i })).filter(({ c }) => c.status === 'COMPLETED' || c.status === 'DISCARDED');
  const line = sized.map(({ c, i }) => `${x(i) + barW / 2},${yBytes(c.bytes)}`).join(' ');

  return (
    <figure className="chart" data-testid="checkpoint-timeline">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Durations and sizes of the last ${shown.length} checkpoints`}>
        {[0, 0.5, 1].map((f) => (
          <g key={f}>
            <line x1={PAD.left} x2={W - PAD.right} y1={PAD.top + plotH * (1 - f)} y2={PAD.top + plotH * (1 - f)} className="grid" />
            <text x={PAD.left - 6} y={PAD.top + plotH * (1 - f) + 4} textAnchor="end" className="axis">
              {formatDuration(maxMs * f)}
            </text>
            <text x={W - PAD.right + 6} y={PAD.top + plotH * (1 - f) + 4} className="axis size">
              {formatBytes(maxBytes * f)}
            </text>
          </g>
        ))}
        {shown.map((c, i) => {
          const failed = c.status === 'FAILED';
          const pending = c.status === 'PENDING';
          const top = failed || pending ? PAD.top + plotH * (pending ? 0.9 : 0) : yMs(c.durationMs ?? 0);
          const height = Math.max(2, PAD.top + plotH - top);
          return (
            <g key={c.id} data-testid="checkpoint-bar" data-status={c.status} data-number={c.number}>
              <title>
                {`#${c.number} ${c.kind} ${c.status} at ${formatTime(c.triggeredAt)}\nduration ${formatDuration(c.durationMs)}, size ${formatBytes(c.bytes)}${c.failureReason ? `\n${c.failureReason}` : ''}`}
              </title>
              <rect x={x(i)} y={top} width={barW} height={height} rx={2} className={`bar bar-${c.status.toLowerCase()}`} />
              {failed && (
                <text x={x(i) + barW / 2} y={PAD.top + 12} textAnchor="middle" className="fail-mark">
                  ✕
                </text>
              )}
              {(i % Math.ceil(shown.length / 10) === 0 || i === shown.length - 1) && (
                <text x={x(i) + barW / 2} y={H - 8} textAnchor="middle" className="axis">
                  {c.number}
                </text>
              )}
            </g>
          );
        })}
        {sized.length > 1 && <polyline points={line} className="size-line" />}
        {sized.map(({ c, i }) => (
          <circle key={c.id} cx={x(i) + barW / 2} cy={yBytes(c.bytes)} r={2.5} className="size-dot" />
        ))}
      </svg>
      <figcaption className="legend">
        <span>
          <span className="swatch bar-completed" /> end-to-end duration
        </span>
        <span>
          <span className="swatch size-swatch" /> size
        </span>
        <span>
          <span className="swatch bar-discarded" /> discarded by retention
        </span>
        <span>
          <span className="swatch bar-failed" /> failed
        </span>
        <span>
          <span className="swatch bar-pending" /> in progress
        </span>
      </figcaption>
    </figure>
  );
}
