import type { NodeProps } from '@xyflow/react';
import type { OperatorNode } from '../builderGraph';
import { OperatorCard } from './OperatorCard';

/** A source: it starts the pipeline, so it has an output and no input. */
export function SourceNode({ data, selected }: NodeProps<OperatorNode>) {
  return <OperatorCard data={data} selected={selected} input={false} output />;
}
