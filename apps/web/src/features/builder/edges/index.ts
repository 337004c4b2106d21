import type { EdgeTypes } from '@xyflow/react';
import { PartitionEdge } from './PartitionEdge';

/** React Flow's edge types: every pipeline edge is a partitioned channel between two operators. */
export const edgeTypes = { partition: PartitionEdge } satisfies EdgeTypes;
