import dagre from '@dagrejs/dagre';
import type { BuilderDoc } from './builderGraph';

/** An operator node's usual size (its CSS width), for placing nodes before they are measured. */
export const NODE_SIZE = { width: 210, height: 60 };

/**
 * Places the operators left to right in dataflow order (dagre's layered layout), keeping edges as they are.
 * `nodeHeight` is the height assumed for nodes not measured yet.
 */
export function layoutDoc(doc: BuilderDoc, { ranksep = 90, nodeHeight = NODE_SIZE.height } = {}): BuilderDoc {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 40, ranksep, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of doc.nodes) g.setNode(n.id, { width: n.measured?.width ?? NODE_SIZE.width, height: n.measured?.height ?? nodeHeight });
  for (const e of doc.edges) g.setEdge(e.source, e.target);
  dagre.layout(g);
  return {
    ...doc,
    nodes: doc.nodes.map((n) => {
      const p = g.node(n.id);
      const width = n.measured?.width ?? NODE_SIZE.width;
      const height = n.measured?.height ?? nodeHeight;
      return { ...n, position: { x: Math.round(p.x - width / 2), y: Math.round(p.y - height / 2) } };
    }),
  };
}
