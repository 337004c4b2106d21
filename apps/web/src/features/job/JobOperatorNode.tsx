'use client';
import type { Node, NodeProps, NodeTypes } from '@xyflow/react';
import type { OperatorNodeData, OperatorNodeType } from '@/features/builder/builderGraph';
import { OperatorCard } from '@/features/builder/nodes/OperatorCard';

export interface JobNodeData extends OperatorNodeData {
  /** The parallelism the operator converges to, while it differs from the one it runs at. */
  target?: number;
  /** While the job is stalled and this operator's subtasks hold it up: why, subtask by subtask. */
  stalled?: string[];
}

export type JobNode = Node<JobNodeData, OperatorNodeType>;

const PORTS: Record<OperatorNodeType, { input: boolean | 'sides'; output: boolean }> = {
  source: { input: false, output: true },
  transform: { input: true, output: true },
  keyed: { input: true, output: true },
  // A join's two inputs, labelled left and right, where its edges end.
  join: { input: 'sides', output: true },
  sink: { input: true, output: false },
};

/**
 * An operator on the job's graph: the builder's card, with a stalled marker and its target parallelism above it
 * (class names other than React Flow's `source` and `target`, which mark handles).
 */
function JobOperatorNode({ data, selected, type }: NodeProps<JobNode>) {
  const id = data.vertex.id;
  return (
    <div className={data.stalled ? 'job-op stalled' : 'job-op'}>
      <div className="job-op-tags">
        {data.stalled && (
          <span className="op-tag op-tag-stalled" data-testid={`stalled-${id}`} title={data.stalled.join('\n')}>
            ⚠ stalled
          </span>
        )}
        {data.target !== undefined && (
          <span className="op-tag op-tag-target" data-testid={`node-target-${id}`} title={`Converging to parallelism ${data.target}, as asked`}>
            → ×{data.target}
          </span>
        )}
      </div>
      <OperatorCard data={data} selected={selected} {...PORTS[type]} />
    </div>
  );
}

/** The job graph's node types: one per operator kind and one for joins, as the builder's, each the card above. */
export const jobNodeTypes = {
  source: JobOperatorNode,
  transform: JobOperatorNode,
  keyed: JobOperatorNode,
  join: JobOperatorNode,
  sink: JobOperatorNode,
} satisfies NodeTypes;
