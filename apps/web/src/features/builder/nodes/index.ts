import type { NodeTypes } from '@xyflow/react';
import { KeyedNode } from './KeyedNode';
import { SinkNode } from './SinkNode';
import { SourceNode } from './SourceNode';
import { TransformNode } from './TransformNode';

/** React Flow's node types, one per operator kind (the canvas and the job graph both use them). */
export const nodeTypes = {
  source: SourceNode,
  transform: TransformNode,
  keyed: KeyedNode,
  sink: SinkNode,
} satisfies NodeTypes;
