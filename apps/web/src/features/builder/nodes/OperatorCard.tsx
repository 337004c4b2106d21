import { operatorSpec } from '@keyflow/core';
import { Handle, Position } from '@xyflow/react';
import { Fragment } from 'react';
import { backpressureColor, backpressureLevel, busyColor } from '@/features/job/backpressure';
import { NodeSourceLag } from '@/features/job/NodeSourceLag';
import { NodeWatermark } from '@/features/job/NodeWatermark';
import { ParallelismReadOnly, ParallelismSlider } from '@/features/job/ParallelismSlider';
import { useMayAct } from '@/lib/auth';
import { formatCount, formatRate } from '@/lib/format';
import { deliveryOf, INPUT_SIDES, type OperatorNodeData } from '../builderGraph';

const KIND_ICON = { source: '▶', transform: 'ƒ', keyed: '◆', sink: '■' } as const;

const GUARANTEE_HELP = {
  'exactly-once': 'exactly-once: its output changes only when a checkpoint completes, so a recovery writes nothing twice',
  'at-least-once': 'at-least-once: it writes sooner, but after a recovery it writes again what followed the last checkpoint',
} as const;

/** Where a join's input handles sit down its left edge, left above right. */
const SIDE_TOP = ['30%', '70%'];

/** Where the i-th of n output handles sits down the right edge: the main one first, then each side output. */
const outputTop = (i: number, n: number) => `${Math.round(((i + 1) / (n + 1)) * 100)}%`;

/** A join's two input handles, one per side, each labelled; an edge drawn to one feeds that side. */
function SideHandles({ vertexId, connectable }: { vertexId: string; connectable: boolean }) {
  return INPUT_SIDES.map((side, i) => (
    <Fragment key={side}>
      <Handle type="target" id={side} position={Position.Left} isConnectable={connectable} style={{ top: SIDE_TOP[i] }} />
      <span className="op-side" style={{ top: SIDE_TOP[i] }} data-testid={`input-${vertexId}-${side}`}>
        {side}
      </span>
    </Fragment>
  ));
}

/**
 * An operator's outputs: its main one, then one handle per side output, each labelled with its name and drawn from
 * as the edge's `output`. (The main handle comes first: an edge that names no handle starts at the first.)
 */
function OutputHandles({ vertexId, outputs, connectable }: { vertexId: string; outputs: readonly string[]; connectable: boolean }) {
  if (!outputs.length) return <Handle type="source" position={Position.Right} isConnectable={connectable} />;
  const n = outputs.length + 1;
  return (
    <>
      <Handle type="source" position={Position.Right} isConnectable={connectable} style={{ top: outputTop(0, n) }} />
      {outputs.map((output, i) => (
        <Fragment key={output}>
          <Handle type="source" id={output} position={Position.Right} isConnectable={connectable} style={{ top: outputTop(i + 1, n) }} />
          <span className="op-output" style={{ top: outputTop(i + 1, n) }} data-testid={`output-${vertexId}-${output}`}>
            {output}
          </span>
        </Fragment>
      ))}
    </>
  );
}

/**
 * The body every operator node shares; the node type decides which handles it has: `input` one, or a join's two
 * (`sides`: left and right); `output` its main one and one per side output its operator declares.
 */
export function OperatorCard({
  data,
  selected,
  input,
  output,
}: {
  data: OperatorNodeData;
  selected?: boolean;
  input: boolean | 'sides';
  output: boolean;
}) {
  const { vertex, issues, live } = data;
  const mayRescale = useMayAct('operator');
  const spec = operatorSpec(vertex.type);
  const kind = spec?.kind ?? 'transform';
  const metrics = live?.metrics;
  const level = backpressureLevel(metrics?.backpressure);
  const parallelism = live?.parallelism ?? vertex.parallelism;
  // On the job page the control plane's word; in the builder, what the settings choose.
  const guarantee = live?.guarantee ?? deliveryOf(vertex);
  const deadLetters = live ? (metrics?.deadLetters ?? 0) : 0;
  const lateRecords = live ? (metrics?.lateRecords ?? 0) : 0;
  // A window operator or a join always shows its count: none late is worth knowing too.
  const showLate = !!live && (vertex.type === 'window' || !!spec?.twoInputs || lateRecords > 0);
  const outputs = output ? (spec?.outputs ?? []) : [];
  const classes = [
    'op',
    `op-${kind}`,
    input === 'sides' && 'op-join',
    outputs.length > 0 && 'op-side-outputs',
    selected && 'selected',
    issues?.length && 'has-issues',
    live && `bp-${level}`,
  ].filter(Boolean);
  return (
    <div
      className={classes.join(' ')}
      data-testid={`node-${vertex.id}`}
      data-issues={issues?.length ?? 0}
      style={live ? { borderColor: backpressureColor[level] } : undefined}
      title={issues?.length ? issues.join('\n') : spec?.description}
    >
      {input === 'sides' ? (
        <SideHandles vertexId={vertex.id} connectable={!live} />
      ) : (
        input && <Handle type="target" position={Position.Left} isConnectable={!live} />
      )}
      <div className="op-head">
        <span className="op-icon" aria-hidden>
          {KIND_ICON[kind]}
        </span>
        <span className="op-name">{vertex.name || spec?.label || vertex.type}</span>
        <span className="op-par" title={live?.maxParallelism ? `parallelism ${parallelism}, maxParallelism ${live.maxParallelism}` : 'parallelism'}>
          ×{parallelism}
        </span>
      </div>
      <div className="op-sub">
        {vertex.id} · {spec?.label ?? vertex.type}
      </div>
      {!!issues?.length && (
        <div className="op-issues" role="note">
          ⚠ {issues.length === 1 ? issues[0] : `${issues.length} problems`}
        </div>
      )}
      {live && (
        <div className="op-live" data-testid={`live-${vertex.id}`}>
          <span title="records in per second">in {formatRate(metrics?.recordsInPerSec ?? 0)}</span>
          <span title="records out per second">out {formatRate(metrics?.recordsOutPerSec ?? 0)}</span>
          <span className="bp" title="share of time waiting on full output channels (backpressure)">
            <span className="bp-bar">
              <span style={{ width: `${Math.round((metrics?.backpressure ?? 0) * 100)}%`, background: backpressureColor[level] }} />
            </span>
            {Math.round((metrics?.backpressure ?? 0) * 100)}% bp
          </span>
          <span
            className="bp"
            data-testid={`busy-${vertex.id}`}
            title="share of time its busiest subtask was neither waiting for input nor on full output channels (busy): near 100%, it limits the job"
          >
            <span className="bp-bar">
              <span style={{ width: `${Math.round((metrics?.busy ?? 0) * 100)}%`, background: busyColor(metrics?.busy) }} />
            </span>
            {Math.round((metrics?.busy ?? 0) * 100)}% busy
          </span>
        </div>
      )}
      {live && <NodeWatermark vertexId={vertex.id} metrics={metrics} ownClock={live.ownClock} />}
      {live && kind === 'source' && <NodeSourceLag vertexId={vertex.id} metrics={metrics} />}
      {(guarantee || deadLetters > 0 || showLate) && (
        <div className="op-badges">
          {guarantee && (
            <span className={`op-badge ${guarantee}`} data-testid={`guarantee-${vertex.id}`} title={GUARANTEE_HELP[guarantee]}>
              {guarantee}
            </span>
          )}
          {deadLetters > 0 && (
            <span
              className="op-badge dead"
              data-testid={`dead-letters-${vertex.id}`}
              title="Records this operator could not process since the job started (see Dead letters below the graph)"
            >
              ⚠ {formatCount(deadLetters)} dead letter{deadLetters === 1 ? '' : 's'}
            </span>
          )}
          {showLate && (
            <span
              className={lateRecords > 0 ? 'op-badge late' : 'op-badge late none'}
              data-testid={`late-records-${vertex.id}`}
              title="Records that came after their window had fired and its allowed lateness had passed, since the job started (see the Watermarks tab)"
            >
              {formatCount(lateRecords)} late
            </span>
          )}
        </div>
      )}
      {live?.jobId &&
        live.scaling &&
        (mayRescale ? (
          <ParallelismSlider jobId={live.jobId} vertexId={vertex.id} parallelism={parallelism} limits={live.scaling} enabled={!!live.rescalable} />
        ) : (
          <ParallelismReadOnly vertexId={vertex.id} parallelism={parallelism} max={live.scaling.max} />
        ))}
      {output && <OutputHandles vertexId={vertex.id} outputs={outputs} connectable={!live} />}
    </div>
  );
}
