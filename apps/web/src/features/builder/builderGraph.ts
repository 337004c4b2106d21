import type { JobMetrics } from '@keyflow/api';
import type { SliderLimits } from '@/features/job/scaling';
import {
  connectionProblem,
  edgeId,
  graphSchema,
  knownFields,
  operatorSpec,
  postgresSinkSettings,
  sinkDelivery,
  validateGraph,
  type Delivery,
  type Edge,
  type GraphInput,
  type GraphIssue,
  type OperatorKind,
  type Partitioning,
  type Vertex,
} from '@keyflow/core';
import type { Edge as FlowEdge, Node as FlowNode } from '@xyflow/react';
import { draftIssues } from './fieldDrafts';

// The builder's document is React Flow's nodes and edges; these pure functions translate it to and from the
// pipeline graph the API stores, and apply core's graph rules (the same module the server validates with).

export type VertexDraft = Omit<Vertex, 'position'>;

export interface OperatorNodeData extends Record<string, unknown> {
  vertex: VertexDraft;
  /** What is wrong with this operator, from validateGraph. */
  issues?: string[];
  /** The text typed into its fields, by field (`parallelism`, `settings.rate`), while it differs from the value's own. */
  drafts?: Record<string, string>;
  /** On the job page: the live figures and the planned parallelism. */
  live?: {
    metrics?: JobMetrics['vertices'][string];
    parallelism: number;
    maxParallelism?: number;
    jobId?: string;
    rescalable?: boolean;
    scaling?: SliderLimits;
    /** A sink's delivery guarantee, as the control plane reports it for the job. */
    guarantee?: Delivery;
    /** Its event time is a generated source's own clock (see ownClockVertices): no lag behind the wall clock. */
    ownClock?: boolean;
  };
}

/** Which input of a join an edge feeds; also the id of the join node's handle it ends at. */
export type InputSide = NonNullable<Edge['side']>;
export const INPUT_SIDES: readonly InputSide[] = ['left', 'right'];

export interface PartitionEdgeData extends Record<string, unknown> {
  partitioning: Partitioning;
  key?: string;
  side?: InputSide;
  /** The side output of its source it carries (none: the main output); also the id of the handle it starts at. */
  output?: string;
  issues?: string[];
}

/** A node's React Flow type: its operator's kind, or `join` for an operator of two inputs (two handles, left and right). */
export type OperatorNodeType = OperatorKind | 'join';

export type OperatorNode = FlowNode<OperatorNodeData, OperatorNodeType>;
export type PartitionEdge = FlowEdge<PartitionEdgeData>;

export interface BuilderDoc {
  nodes: OperatorNode[];
  edges: PartitionEdge[];
}

export const emptyDoc: BuilderDoc = { nodes: [], edges: [] };

export const kindOf = (type: string): OperatorKind => operatorSpec(type)?.kind ?? 'transform';

/** The node type an operator type is drawn as: `join` for one of two inputs, else its kind. */
export const nodeTypeOf = (type: string): OperatorNodeType => (operatorSpec(type)?.twoInputs ? 'join' : kindOf(type));

/** The side a handle id stands for: a join's input handles are named after their sides. */
export const sideOf = (handleId: string | null | undefined): InputSide | undefined => INPUT_SIDES.find((s) => s === handleId);

/** The side output an output handle's id stands for: side outputs' handles are named after them, the main one has none. */
export const outputOf = (handleId: string | null | undefined): string | undefined => handleId || undefined;

/**
 * A sink's delivery guarantee as its settings stand, also while they are incomplete (core's `sinkDelivery` reads a
 * postgres sink whose settings do not parse yet as its default); undefined for operators that are no sink.
 */
export function deliveryOf(vertex: Pick<VertexDraft, 'type' | 'settings'>): Delivery | undefined {
  if (vertex.type !== 'postgres') return sinkDelivery(vertex);
  const chosen = postgresSinkSettings.shape.delivery.safeParse(vertex.settings?.delivery);
  return chosen.success ? chosen.data : sinkDelivery(vertex);
}

export function edgeLabel(d: Pick<PartitionEdgeData, 'partitioning' | 'key' | 'side' | 'output'>): string {
  const partitioning = d.partitioning === 'hash' ? `hash(${d.key || '?'})` : d.partitioning;
  return [d.output, d.side, partitioning].filter(Boolean).join(' · ');
}

/** The graph the API takes, from the canvas. */
export function toGraph(doc: BuilderDoc): GraphInput {
  return {
    vertices: doc.nodes.map((n) => ({
      ...n.data.vertex,
      position: { x: Math.round(n.position.x), y: Math.round(n.position.y) },
    })),
    edges: doc.edges.map((e) => ({
      from: e.source,
      to: e.target,
      partitioning: e.data?.partitioning ?? 'forward',
      ...(e.data?.partitioning === 'hash' && e.data.key ? { key: e.data.key } : {}),
      ...(e.data?.side && { side: e.data.side }),
      ...(e.data?.output && { output: e.data.output }),
    })),
  };
}

/** A canvas edge of a graph edge: a side output's starts at its handle, a join's input ends at the handle of its side. */
export function toFlowEdge(e: Pick<Edge, 'from' | 'to' | 'partitioning' | 'key' | 'side' | 'output' | 'id'>): PartitionEdge {
  return {
    id: edgeId(e),
    type: 'partition',
    source: e.from,
    target: e.to,
    ...(e.output && { sourceHandle: e.output }),
    ...(e.side && { targetHandle: e.side }),
    data: {
      partitioning: e.partitioning,
      ...(e.key !== undefined && { key: e.key }),
      ...(e.side && { side: e.side }),
      ...(e.output && { output: e.output }),
    },
    label: edgeLabel(e),
  };
}

/** The canvas of a stored graph; `placed` says whether every operator had a position (else lay it out). */
export function fromGraph(input: unknown): { doc: BuilderDoc; placed: boolean } {
  const parsed = graphSchema.safeParse(input);
  if (!parsed.success) return { doc: emptyDoc, placed: true };
  const { vertices, edges } = parsed.data;
  const nodes: OperatorNode[] = vertices.map(({ position, ...vertex }, i) => ({
    id: vertex.id,
    type: nodeTypeOf(vertex.type),
    position: position ?? { x: i * 260, y: 0 },
    data: { vertex },
  }));
  return { doc: { nodes, edges: edges.map(toFlowEdge) }, placed: vertices.every((v) => v.position) };
}

/** An id for a new operator of `type`: the type itself, or the type with the first free number. */
export function newVertexId(type: string, taken: Iterable<string>): string {
  const ids = new Set(taken);
  if (!ids.has(type)) return type;
  for (let n = 2; ; n++) if (!ids.has(`${type}${n}`)) return `${type}${n}`;
}

export function newOperatorNode(type: string, position: { x: number; y: number }, doc: BuilderDoc): OperatorNode {
  const id = newVertexId(
    type,
    doc.nodes.map((n) => n.id),
  );
  return { id, type: nodeTypeOf(type), position, data: { vertex: { id, type, parallelism: 1, settings: {} } } };
}

/**
 * The fields of the records an edge from `from` carries, as far as the catalog knows: those of its main output;
 * what a side output carries is its operator's business (as core's knownFields has it).
 */
export function edgeFields(graph: Pick<GraphInput, 'vertices' | 'edges'>, edge: Pick<Edge, 'from' | 'output'>): string[] | undefined {
  return edge.output ? undefined : knownFields(graph, edge.from);
}

/** The field to key by on an edge, when its records are known to have one: events' user, a keyed result's key. */
export function suggestKey(graph: Pick<GraphInput, 'vertices' | 'edges'>, edge: Pick<Edge, 'from' | 'output'>): string | undefined {
  const fields = edgeFields(graph, edge);
  return ['user', 'key'].find((f) => fields?.includes(f));
}

/** The side a new input of join `to` takes: the one asked for, else the first still free. */
function sideFor(graph: Pick<GraphInput, 'edges'>, to: string, asked: InputSide | undefined): InputSide | undefined {
  return asked ?? INPUT_SIDES.find((s) => !graph.edges.some((e) => e.to === to && e.side === s));
}

/**
 * How a new edge from `from` (its side output `output`, if one) to `to` is partitioned: by key into keyed operators
 * (keyed by the suggested field, if any: else the edge asks for one), else forward when it can chain. Into a join it
 * feeds `side` (the handle it was drawn to), else the free one.
 */
export function defaultEdge(graph: Pick<GraphInput, 'vertices' | 'edges'>, from: string, to: string, side?: InputSide, output?: string): Edge {
  const a = graph.vertices.find((v) => v.id === from);
  const b = graph.vertices.find((v) => v.id === to);
  const spec = b && operatorSpec(b.type);
  const carries = output ? { output } : {};
  if (spec?.kind === 'keyed') {
    const key = suggestKey(graph, { from, output });
    const input = spec.twoInputs ? sideFor(graph, to, side) : undefined;
    return { from, to, partitioning: 'hash', ...(key && { key }), ...(input && { side: input }), ...carries };
  }
  const partitioning: Partitioning = a && b && a.parallelism === b.parallelism ? 'forward' : 'rebalance';
  return { from, to, partitioning, ...carries };
}

/** Where a connection starts and ends: the operators, a join's input handle (`side`) and a side output's handle (`output`). */
export interface ConnectionEnds {
  from: string | null;
  to: string | null;
  side?: InputSide;
  output?: string;
}

/**
 * Why the canvas refuses a connection, or undefined: core's rule, with the partitioning and side the edge would get.
 * The one rule the canvas asks while a connection is dragged, when it is dropped, and before it is added.
 */
export function connectionRefusal(doc: BuilderDoc, { from, to, side, output }: ConnectionEnds): string | undefined {
  if (!from || !to) return 'connect an output to an input';
  const graph = toGraph(doc) as Pick<GraphInput, 'vertices' | 'edges'> & { vertices: Vertex[]; edges: Edge[] };
  const edge = defaultEdge(graph, from, to, side, output);
  return connectionProblem(graph, from, to, edge.partitioning, edge.side);
}

/** The ends of a connection React Flow reports (`Connection`, or an edge being drawn over a handle). */
export function connectionOf(c: {
  source: string | null;
  target: string | null;
  sourceHandle?: string | null;
  targetHandle?: string | null;
}): ConnectionEnds {
  return { from: c.source, to: c.target, side: sideOf(c.targetHandle), output: outputOf(c.sourceHandle) };
}

/**
 * The ends of a connection being drawn (or just dropped), output first whichever end it was drawn from: the side of
 * a join it would feed is the join's handle at its input end, the side output it would carry the handle at the other.
 */
export function connectionEnds(c: {
  fromNode: { id: string };
  toNode: { id: string } | null;
  fromHandle: { type: string; id?: string | null } | null;
  toHandle: { id?: string | null } | null;
}): ConnectionEnds {
  const reversed = c.fromHandle?.type === 'target';
  return reversed
    ? { from: c.toNode?.id ?? null, to: c.fromNode.id, side: sideOf(c.fromHandle?.id), output: outputOf(c.toHandle?.id) }
    : { from: c.fromNode.id, to: c.toNode?.id ?? null, side: sideOf(c.toHandle?.id), output: outputOf(c.fromHandle?.id) };
}

/** Zod's wording for a missing value is "Invalid input: expected string, received undefined": say "required". */
export function friendlyMessage(message: string): string {
  if (/received undefined/.test(message)) return 'required';
  return message.replace(/^Invalid input: /, '');
}

export interface IssueIndex {
  /** Issues of each operator, by id. */
  vertices: Map<string, GraphIssue[]>;
  /** Issues of each edge, by `from->to`. */
  edges: Map<string, GraphIssue[]>;
  /** Each operator's messages per field (`parallelism`, `settings.table`, ...), for inline errors. */
  fields: Map<string, Map<string, string>>;
  all: GraphIssue[];
  /** Typed text that stands for no valid value (the graph still holds the previous one): saving would lose it. */
  unparsed: GraphIssue[];
}

/**
 * The issues of the canvas, indexed by the operator, edge and field they belong to: typed text that is no valid
 * value first (it is what the field shows), then what validateGraph finds.
 */
export function indexIssues(doc: BuilderDoc): IssueIndex {
  const unparsed = draftIssues(doc);
  const result = validateGraph(toGraph(doc));
  const index: IssueIndex = { vertices: new Map(), edges: new Map(), fields: new Map(), all: [], unparsed };
  for (const issue of [...unparsed, ...(result.ok ? [] : result.issues)]) {
    const clean = { ...issue, message: friendlyMessage(issue.message) };
    index.all.push(clean);
    const [list, i, ...field] = issue.path;
    if (issue.edgeId) index.edges.set(issue.edgeId, [...(index.edges.get(issue.edgeId) ?? []), clean]);
    const vertexId = issue.vertexId ?? (list === 'vertices' && typeof i === 'number' ? doc.nodes[i]?.id : undefined);
    if (vertexId) {
      index.vertices.set(vertexId, [...(index.vertices.get(vertexId) ?? []), clean]);
      if (list === 'vertices' && field.length) {
        const fields = index.fields.get(vertexId) ?? new Map<string, string>();
        const name = field.join('.');
        if (!fields.has(name)) fields.set(name, clean.message);
        index.fields.set(vertexId, fields);
      }
    }
  }
  return index;
}
