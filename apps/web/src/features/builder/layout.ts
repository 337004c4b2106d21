import dagre from '@dagrejs/dagre';
import type { BuilderDoc, OperatorNode } from './builderGraph';

/** An operator node's usual size (its CSS width), for placing nodes before they are measured. */
export const NODE_SIZE = { width: 210, height: 60 };
/** A join node's CSS width: wider by the gutter that labels its two inputs. */
export const JOIN_NODE_WIDTH = 236;

const widthOf = (n: OperatorNode) => n.measured?.width ?? (n.type === 'join' ? JOIN_NODE_WIDTH : NODE_SIZE.width);

/**
 * Dagre knows no handles: where it put a join's two producers in one column with the right one above, they swap
 * places, so the edges into the join's left (upper) and right (lower) handles do not cross.
 */
function leftInputsAbove(doc: BuilderDoc, centers: Map<string, { x: number; y: number }>): void {
  for (const left of doc.edges) {
    if (left.data?.side !== 'left') continue;
    const right = doc.edges.find((e) => e.target === left.target && e.data?.side === 'right');
    const a = centers.get(left.source);
    const b = right && centers.get(right.source);
    if (a && b && a !== b && Math.abs(a.x - b.x) < 1 && a.y > b.y) [a.y, b.y] = [b.y, a.y];
  }
}

/**
 * Places the operators left to right in dataflow order (dagre's layered layout), keeping edges as they are.
 * `nodeHeight` is the height assumed for nodes not measured yet.
 */
export function layoutDoc(doc: BuilderDoc, { ranksep = 90, nodeHeight = NODE_SIZE.height } = {}): BuilderDoc {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 40, ranksep, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of doc.nodes) g.setNode(n.id, { width: widthOf(n), height: n.measured?.height ?? nodeHeight });
  for (const e of doc.edges) g.setEdge(e.source, e.target);
  dagre.layout(g);
  const centers = new Map(doc.nodes.map((n) => [n.id, { x: g.node(n.id).x, y: g.node(n.id).y }]));
  leftInputsAbove(doc, centers);
  return {
    ...doc,
    nodes: doc.nodes.map((n) => {
      const p = centers.get(n.id)!;
      const height = n.measured?.height ?? nodeHeight;
      return { ...n, position: { x: Math.round(p.x - widthOf(n) / 2), y: Math.round(p.y - height / 2) } };
    }),
  };
}
