import type { NodeProps } from '@xyflow/react';
import type { OperatorNode } from '../builderGraph';
import { OperatorCard } from './OperatorCard';

/** A stateless transform: one input, one output. */
export function TransformNode({ data, selected }: NodeProps<OperatorNode>) {
  return <OperatorCard data={data} selected={selected} input output />;
}
