import type { NodeProps } from '@xyflow/react';
import type { OperatorNode } from '../builderGraph';
import { OperatorCard } from './OperatorCard';

/** A join: two keyed inputs, each on a handle of its own (left and right), and one output. */
export function JoinNode({ data, selected }: NodeProps<OperatorNode>) {
  return <OperatorCard data={data} selected={selected} input="sides" output />;
}
