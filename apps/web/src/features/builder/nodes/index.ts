import type { NodeTypes } from '@xyflow/react';
import { JoinNode } from './JoinNode';
import { KeyedNode } from './KeyedNode';
import { SinkNode } from './SinkNode';
import { SourceNode } from './SourceNode';
import { TransformNode } from './TransformNode';

/** React Flow's node types, one per operator kind and `join` for operators of two inputs (the builder's canvas). */
export const nodeTypes = {
  source: SourceNode,
  transform: TransformNode,
  keyed: KeyedNode,
  join: JoinNode,
  sink: SinkNode,
} satisfies NodeTypes;
