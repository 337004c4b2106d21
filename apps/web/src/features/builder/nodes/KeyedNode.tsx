import type { NodeProps } from '@xyflow/react';
import type { OperatorNode } from '../builderGraph';
import { OperatorCard } from './OperatorCard';

/** A keyed stateful operator: its input arrives partitioned by key (a hash edge). */
export function KeyedNode({ data, selected }: NodeProps<OperatorNode>) {
  return <OperatorCard data={data} selected={selected} input output />;
}
