import type { WorkerInfo } from '@keyflow/api';
import { buildChains, graphSchema, initialPlan, operatorSpec, type Edge, type GraphInput } from '@keyflow/core';
import { edgeFields } from './builderGraph';

// What the builder warns about without blocking a deploy: the catalog and the pool as they are now may be wrong
// about tomorrow (fields the catalog cannot know, workers that join).

/** The worker slots a pipeline takes: one per subtask of each chain (operators joined by forward edges share one). */
export function slotsNeeded(input: GraphInput): number | undefined {
  const parsed = graphSchema.safeParse(input);
  if (!parsed.success) return undefined;
  const graph = parsed.data;
  const ids = new Set(graph.vertices.map((v) => v.id));
  if (ids.size < graph.vertices.length || graph.edges.some((e) => !ids.has(e.from) || !ids.has(e.to))) return undefined;
  return buildChains(graph, initialPlan(graph)).reduce((n, chain) => n + chain.parallelism, 0);
}

/** Why the pool cannot run all of a pipeline's subtasks now, if it cannot: fewer slots in all, or fewer free. */
export function poolWarning(needed: number | undefined, workers: readonly Pick<WorkerInfo, 'slots' | 'usedSlots'>[] | undefined): string | undefined {
  if (needed === undefined || workers === undefined) return undefined;
  const total = workers.reduce((n, w) => n + w.slots, 0);
  const free = workers.reduce((n, w) => n + Math.max(0, w.slots - w.usedSlots), 0);
  if (needed > total) return `the pool has ${total} slot${total === 1 ? '' : 's'}; this pipeline needs ${needed}`;
  if (needed > free) return `${free} of the pool's ${total} slots are free; this pipeline needs ${needed}`;
  return undefined;
}

/** Why a hash edge's key may be wrong: a field its upstream is not known to emit (its records would be dead letters). */
export function keyWarning(
  graph: Pick<GraphInput, 'vertices' | 'edges'>,
  edge: Pick<Edge, 'from' | 'output' | 'partitioning' | 'key'>,
): string | undefined {
  if (edge.partitioning !== 'hash' || !edge.key) return undefined;
  const fields = edgeFields(graph, edge);
  if (fields === undefined || fields.includes(edge.key)) return undefined;
  return `${edge.from} is not known to emit '${edge.key}' (its records have ${fields.join(', ') || 'no fields'}); records without it go to dead letters`;
}

/** Why some of an operator's output goes nowhere: side outputs it declares that no edge is drawn from (as in Flink, what it sends there is dropped). */
export function sideOutputWarning(graph: Pick<GraphInput, 'vertices' | 'edges'>, vertexId: string): string | undefined {
  const vertex = graph.vertices.find((v) => v.id === vertexId);
  const outputs = (vertex && operatorSpec(vertex.type)?.outputs) ?? [];
  const open = outputs.filter((o) => !graph.edges.some((e) => e.from === vertexId && e.output === o));
  if (!open.length) return undefined;
  const names = open.map((o) => `'${o}'`).join(', ');
  return `${open.length === 1 ? 'side output' : 'side outputs'} ${names} ${open.length === 1 ? 'is' : 'are'} not connected: what ${vertexId} sends there is dropped (draw an edge from ${open.length === 1 ? 'its handle' : 'their handles'} to keep it)`;
}
