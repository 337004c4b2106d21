import type { NodeProps } from '@xyflow/react';
import type { OperatorNode } from '../builderGraph';
import { OperatorCard } from './OperatorCard';

/** A sink: it ends the pipeline, so it has an input and no output. */
export function SinkNode({ data, selected }: NodeProps<OperatorNode>) {
  return <OperatorCard data={data} selected={selected} input output={false} />;
}
