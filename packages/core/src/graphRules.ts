import { z } from 'zod';
import { edgeId, graphSchema, type Edge, type Graph, type Partitioning, type Vertex } from './graph.ts';
import { defaultMaxParallelism, UPPER_BOUND_MAX_PARALLELISM } from './keyGroups.ts';
import { operatorSpec } from './operatorCatalog.ts';

/** One reason a graph is invalid, naming the vertex or edge at fault. */
export interface GraphIssue {
  path: (string | number)[];
  message: string;
  vertexId?: string;
  edgeId?: string;
}

export type GraphValidation = { ok: true; graph: Graph } | { ok: false; issues: GraphIssue[] };

/** The maxParallelism a vertex gets at its first deploy. */
export function maxParallelismOf(v: Pick<Vertex, 'type' | 'parallelism' | 'maxParallelism' | 'settings'>): number {
  // A source cannot run more subtasks than it has splits.
  const splits = operatorSpec(v.type)?.splits?.(v.settings);
  if (splits !== undefined) return Math.min(v.maxParallelism ?? splits, splits);
  return v.maxParallelism ?? defaultMaxParallelism(v.parallelism);
}

/**
 * Whether an edge may join `from` to `to`, or why not: the rule the builder applies while a connection is
 * dragged and the validator applies to a saved graph. `side` is the input of a join it would feed.
 */
export function connectionProblem(
  graph: Pick<Graph, 'vertices' | 'edges'>,
  from: string,
  to: string,
  partitioning?: Partitioning,
  side?: Edge['side'],
): string | undefined {
  const a = graph.vertices.find((v) => v.id === from);
  const b = graph.vertices.find((v) => v.id === to);
  if (!a) return `no operator '${from}'`;
  if (!b) return `no operator '${to}'`;
  if (from === to) return 'an operator cannot feed itself';
  const ka = operatorSpec(a.type)?.kind;
  const kb = operatorSpec(b.type)?.kind;
  if (ka === 'sink') return `${a.id} is a sink: it has no output`;
  if (kb === 'source') return `${b.id} is a source: it takes no input`;
  if (graph.edges.some((e) => e.from === from && e.to === to)) return `${from} and ${to} are already connected`;
  if (reaches(graph.edges, to, from)) return `connecting ${from} to ${to} would make a cycle`;
  if (partitioning === 'forward' && a.parallelism !== b.parallelism)
    return `a forward edge needs equal parallelism (${from} has ${a.parallelism}, ${to} has ${b.parallelism})`;
  if (kb === 'keyed' && partitioning !== undefined && partitioning !== 'hash') return `${b.id} is keyed: its input must be partitioned by key (hash)`;
  if (operatorSpec(b.type)?.twoInputs && graph.edges.filter((e) => e.to === to).length >= 2)
    return `${b.id} already has its two inputs (left and right)`;
  const taken = side && graph.edges.find((e) => e.to === to && e.side === side);
  if (taken) return `${b.id}'s ${side} input is already connected (from ${taken.from})`;
  return undefined;
}

function reaches(edges: readonly Pick<Edge, 'from' | 'to'>[], start: string, target: string): boolean {
  const seen = new Set([start]);
  const stack = [start];
  while (stack.length) {
    const v = stack.pop()!;
    if (v === target) return true;
    for (const e of edges)
      if (e.from === v && !seen.has(e.to)) {
        seen.add(e.to);
        stack.push(e.to);
      }
  }
  return false;
}

/**
 * The fields of the records `vertexId` emits as far as the catalog knows, following each operator's
 * `outputFields` from the sources; undefined when it cannot know (an unknown operator, a transform without input
 * or in a cycle).
 * Records may carry fields it cannot know of, so a field missing here is worth a warning, never an error.
 */
export function knownFields(
  graph: { vertices: readonly { id: string; type: string; settings?: unknown }[]; edges: readonly Pick<Edge, 'from' | 'to' | 'output'>[] },
  vertexId: string,
): string[] | undefined {
  const memo = new Map<string, string[] | undefined>();
  const visiting = new Set<string>();
  const visit = (id: string): string[] | undefined => {
    if (memo.has(id)) return memo.get(id);
    const v = graph.vertices.find((x) => x.id === id);
    const spec = v && operatorSpec(v.type);
    if (!v || !spec || visiting.has(id)) return undefined;
    visiting.add(id);
    // What a side output carries is the operator's own business: its fields are not known.
    const inputs = graph.edges.filter((e) => e.to === id).map((e) => (e.output ? undefined : visit(e.from)));
    visiting.delete(id);
    const known = inputs.length > 0 && inputs.every((f) => f !== undefined);
    const fields = spec.outputFields(v.settings, known ? [...new Set(inputs.flat())] : undefined);
    memo.set(id, fields);
    return fields;
  };
  return visit(vertexId);
}

/** Validates a pipeline graph; every issue names the offending vertex or edge by id and path. */
export function validateGraph(input: unknown): GraphValidation {
  const parsed = graphSchema.safeParse(input);
  if (!parsed.success) {
    const raw = input as { vertices?: { id?: unknown }[]; edges?: { id?: unknown; from?: unknown; to?: unknown }[] } | null;
    return {
      ok: false,
      issues: parsed.error.issues.map((i) => {
        const issue: GraphIssue = { path: i.path as (string | number)[], message: i.message };
        const [list, idx] = i.path;
        if (list === 'vertices' && typeof idx === 'number' && typeof raw?.vertices?.[idx]?.id === 'string')
          issue.vertexId = raw.vertices[idx].id as string;
        if (list === 'edges' && typeof idx === 'number') {
          const e = raw?.edges?.[idx];
          if (e && typeof e.from === 'string' && typeof e.to === 'string') issue.edgeId = typeof e.id === 'string' ? e.id : `${e.from}->${e.to}`;
        }
        return issue;
      }),
    };
  }
  const graph = parsed.data;
  const issues: GraphIssue[] = [];
  const byId = new Map<string, Vertex>();

  graph.vertices.forEach((v, i) => {
    const at = (field: string) => ['vertices', i, field];
    if (byId.has(v.id)) issues.push({ path: at('id'), vertexId: v.id, message: `duplicate operator id '${v.id}'` });
    byId.set(v.id, v);
    const spec = operatorSpec(v.type);
    if (!spec) {
      issues.push({ path: at('type'), vertexId: v.id, message: `unknown operator type '${v.type}'` });
      return;
    }
    // Settings are kept as the user typed them (`10s` stays `10s`); whoever runs the operator parses them.
    const settings = spec.settings.safeParse(v.settings);
    if (!settings.success)
      for (const s of settings.error.issues)
        issues.push({ path: ['vertices', i, 'settings', ...(s.path as (string | number)[])], vertexId: v.id, message: s.message });
    const maxP = maxParallelismOf(graph.vertices[i]!);
    if (v.parallelism < 1 || v.parallelism > maxP)
      issues.push({
        path: at('parallelism'),
        vertexId: v.id,
        message: `parallelism must be between 1 and ${maxP} (the operator's maxParallelism${operatorSpec(v.type)?.splits ? ', its splits' : ''})`,
      });
    if (maxP > UPPER_BOUND_MAX_PARALLELISM)
      issues.push({ path: at('maxParallelism'), vertexId: v.id, message: `maxParallelism may not exceed ${UPPER_BOUND_MAX_PARALLELISM}` });
  });

  const ins = new Map<string, Edge[]>();
  const outs = new Map<string, Edge[]>();
  const seenEdges = new Set<string>();
  graph.edges.forEach((e, i) => {
    const eid = edgeId(e);
    const at = (field: string) => ['edges', i, field];
    if (seenEdges.has(eid)) issues.push({ path: ['edges', i], edgeId: eid, message: `duplicate edge '${eid}'` });
    seenEdges.add(eid);
    const a = byId.get(e.from);
    const b = byId.get(e.to);
    if (!a) issues.push({ path: at('from'), edgeId: eid, message: `edge ${eid} starts at unknown operator '${e.from}'` });
    if (!b) issues.push({ path: at('to'), edgeId: eid, message: `edge ${eid} ends at unknown operator '${e.to}'` });
    if (!a || !b) return;
    if (e.from === e.to) issues.push({ path: ['edges', i], edgeId: eid, message: `edge ${eid} joins ${e.from} to itself` });
    if (operatorSpec(a.type)?.kind === 'sink')
      issues.push({ path: at('from'), edgeId: eid, vertexId: a.id, message: `${a.id} is a sink: it has no output` });
    if (operatorSpec(b.type)?.kind === 'source')
      issues.push({ path: at('to'), edgeId: eid, vertexId: b.id, message: `${b.id} is a source: it takes no input` });
    const outputs = operatorSpec(a.type)?.outputs ?? [];
    if (e.output !== undefined && !outputs.includes(e.output))
      issues.push({
        path: at('output'),
        edgeId: eid,
        vertexId: a.id,
        message: `${a.id} has no output '${e.output}' (${outputs.length ? `its side outputs: ${outputs.join(', ')}` : 'it has only its main output'})`,
      });
    if (e.partitioning === 'hash' && !e.key) issues.push({ path: at('key'), edgeId: eid, message: `hash edge ${eid} needs a key field (keyBy)` });
    if (e.partitioning !== 'hash' && e.key)
      issues.push({ path: at('key'), edgeId: eid, message: `only a hash edge takes a key; ${eid} is ${e.partitioning}` });
    if (e.partitioning === 'forward' && a.parallelism !== b.parallelism)
      issues.push({
        path: at('partitioning'),
        edgeId: eid,
        message: `forward edge ${eid} needs equal parallelism (${a.id} has ${a.parallelism}, ${b.id} has ${b.parallelism})`,
      });
    ins.set(e.to, [...(ins.get(e.to) ?? []), e]);
    outs.set(e.from, [...(outs.get(e.from) ?? []), e]);
  });

  graph.vertices.forEach((v, i) => {
    const kind = operatorSpec(v.type)?.kind;
    if (!kind) return;
    const inputs = ins.get(v.id) ?? [];
    if (kind !== 'source' && inputs.length === 0) issues.push({ path: ['vertices', i], vertexId: v.id, message: `${v.id} has no input` });
    const twoInputs = operatorSpec(v.type)?.twoInputs === true;
    if (twoInputs) {
      const sides = inputs.map((e) => e.side);
      if (inputs.length !== 2 || !sides.includes('left') || !sides.includes('right'))
        issues.push({
          path: ['vertices', i],
          vertexId: v.id,
          message: `${v.id} joins two inputs: connect one edge as its left input and one as its right (it has ${inputs.length === 0 ? 'none' : sides.map((s) => s ?? 'an edge without a side').join(' and ')})`,
        });
    } else
      for (const e of inputs)
        if (e.side)
          issues.push({
            path: ['edges', graph.edges.indexOf(e), 'side'],
            vertexId: v.id,
            edgeId: edgeId(e),
            message: `${edgeId(e)} says it is the ${e.side} input, but ${v.id} is no join: only a join's inputs have a side`,
          });
    if (kind === 'keyed') {
      if (inputs.length === 0) issues.push({ path: ['vertices', i], vertexId: v.id, message: `${v.id} is keyed but has no keyed input` });
      for (const e of inputs)
        if (e.partitioning !== 'hash' || !e.key)
          issues.push({
            path: ['edges', graph.edges.indexOf(e), 'partitioning'],
            vertexId: v.id,
            edgeId: edgeId(e),
            message: `${v.id} is keyed: its input ${edgeId(e)} must be a hash edge with a key (keyBy)`,
          });
      // A join's two inputs key by their own fields (an auction's id, a bid's auction): the values must match, not the names.
      const keys = new Set(inputs.map((e) => e.key));
      if (keys.size > 1 && !twoInputs) issues.push({ path: ['vertices', i], vertexId: v.id, message: `${v.id}'s inputs key by different fields` });
    }
    if (kind !== 'sink' && (outs.get(v.id) ?? []).length === 0 && kind !== 'source')
      issues.push({ path: ['vertices', i], vertexId: v.id, message: `${v.id} has no output: connect it to a sink` });
  });
  if (!graph.vertices.some((v) => operatorSpec(v.type)?.kind === 'source')) issues.push({ path: ['vertices'], message: 'a pipeline needs a source' });

  for (const cycle of findCycles(graph))
    issues.push({
      path: ['edges'],
      vertexId: cycle[0],
      message: `cycle: ${[...cycle, cycle[0]].join(' → ')}; pipelines must be acyclic`,
    });

  return issues.length ? { ok: false, issues } : { ok: true, graph };
}

/** The vertices of each cycle (strongly connected components of more than one vertex, or a self loop). */
function findCycles(graph: Graph): string[][] {
  // Tarjan's SCC algorithm.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  let next = 0;
  const succ = (v: string) => graph.edges.filter((e) => e.from === v && e.from !== e.to).map((e) => e.to);
  const strong = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of succ(v)) {
      if (!index.has(w)) {
        if (!graph.vertices.some((x) => x.id === w)) continue;
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.reverse());
    }
  };
  for (const v of graph.vertices) if (!index.has(v.id)) strong(v.id);
  return out;
}

export const graphIssueSchema = z.object({
  path: z.array(z.union([z.string(), z.number()])),
  message: z.string(),
  vertexId: z.string().optional(),
  edgeId: z.string().optional(),
});
