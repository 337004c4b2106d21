import { BaseEdge, EdgeLabelRenderer, getSmoothStepPath, type EdgeProps } from '@xyflow/react';
import type { PartitionEdge as PartitionEdgeType } from '../builderGraph';

/**
 * An edge labelled with its partitioning (and, on the job page, its rate). The label is HTML over the canvas
 * rather than SVG text, which React Flow measures once when it mounts and hides if the page was not visible yet.
 */
export function PartitionEdge(props: EdgeProps<PartitionEdgeType>) {
  const [path, labelX, labelY] = getSmoothStepPath(props);
  const invalid = !!props.data?.issues?.length;
  return (
    <>
      <BaseEdge id={props.id} path={path} markerEnd={props.markerEnd} style={props.style} interactionWidth={20} />
      {props.label && (
        <EdgeLabelRenderer>
          <div
            className={`edge-label${invalid ? ' invalid' : ''}${props.selected ? ' selected' : ''}`}
            style={{ transform: `translate(-50%, -50%) translate(${labelX}px, ${labelY}px)`, borderColor: props.style?.stroke }}
            title={props.data?.issues?.join('\n')}
            data-testid={`edge-label-${props.source}-${props.target}`}
          >
            {invalid && '⚠ '}
            {props.label}
          </div>
        </EdgeLabelRenderer>
      )}
    </>
  );
}
