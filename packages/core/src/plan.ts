import { z } from 'zod';
import type { Edge, Graph, Vertex } from './graph.ts';
import { maxParallelismOf } from './graphRules.ts';
import { operatorSpec, userOperatorDefinition } from './operatorCatalog.ts';

/** A vertex's deployment: its parallelism now and its maxParallelism, fixed at first deploy. */
export const vertexPlanSchema = z.object({
  parallelism: z.number().int().min(1),
  maxParallelism: z.number().int().min(1),
  /**
   * Per subtask index, the incarnation running it within the attempt: 0 when the attempt started it, else the id
   * of the rescale that did (DESIGN §6). Left out while every subtask is the attempt's own.
   */
  incarnations: z.array(z.number().int().min(0)).optional(),
});
export type VertexPlan = z.infer<typeof vertexPlanSchema>;

/**
 * The physical plan a job runs: per vertex id its parallelism and maxParallelism, and the version of each user
 * operator it was deployed with (a worker runs that code or none).
 */
export const jobPlanSchema = z.object({ vertices: z.record(z.string(), vertexPlanSchema), operators: z.record(z.string(), z.string()).optional() });
export type JobPlan = z.infer<typeof jobPlanSchema>;

/** A plan as stored (a JSON column, a task's data): validated, never cast. */
export function parsePlan(stored: unknown): JobPlan {
  const parsed = jobPlanSchema.safeParse(stored);
  if (!parsed.success) throw new Error(`the stored plan is malformed: ${parsed.error.issues[0]?.message ?? 'unknown'}`);
  return parsed.data;
}

export function initialPlan(graph: Graph): JobPlan {
  const vertices: Record<string, VertexPlan> = {};
  const operators: Record<string, string> = {};
  for (const v of graph.vertices) {
    vertices[v.id] = { parallelism: v.parallelism, maxParallelism: maxParallelismOf(v) };
    const version = operatorSpec(v.type)?.version;
    if (version) operators[v.type] = version;
  }
  return Object.keys(operators).length ? { vertices, operators } : { vertices };
}

/**
 * Why this process may not run the given vertices of a job, if it may not: a user operator it has not loaded, or
 * loaded at another version than the job was deployed with (it would run different code than the job's state and
 * checkpoints were made by).
 */
export function operatorVersionProblem(plan: JobPlan, vertices: readonly Pick<Vertex, 'id' | 'type'>[], worker: string): string | undefined {
  for (const v of vertices) {
    const want = plan.operators?.[v.type];
    if (!want) continue;
    const have = userOperatorDefinition(v.type) && operatorSpec(v.type)?.version;
    if (!have)
      return `worker ${worker} has no operator '${v.type}' (the job was deployed with ${want}): start the worker with KEYFLOW_OPERATORS naming the module that defines it`;
    if (have !== want)
      return `worker ${worker} has operator '${v.type}' at ${have}, but the job was deployed with ${want}: it refuses to run other code than the job's; give the worker that version, or deploy the job again`;
  }
  return undefined;
}

/** The incarnation of subtask `index` of a vertex (or of the chain it heads): who may read its channels. */
export function incarnationOf(plan: JobPlan, vertexId: string, index: number): number {
  return plan.vertices[vertexId]?.incarnations?.[index] ?? 0;
}

/**
 * The plan after a live rescale of `chain` to `parallelism` by rescale `scalingId`: subtasks below both the old
 * and the new parallelism keep their incarnation; every index the rescale adds is a new incarnation, named by it,
 * so it never shares a channel with a subtask that held the same index before.
 */
export function rescaledPlan(plan: JobPlan, chain: Chain, parallelism: number, scalingId: number): JobPlan {
  const vertices = { ...plan.vertices };
  for (const v of chain.vertices) {
    const { incarnations: _, ...was } = vertices[v.id]!;
    const incarnations = Array.from({ length: parallelism }, (_, i) => (i < was.parallelism ? incarnationOf(plan, v.id, i) : scalingId));
    vertices[v.id] = incarnations.some((x) => x !== 0) ? { ...was, parallelism, incarnations } : { ...was, parallelism };
  }
  return { ...plan, vertices };
}

/**
 * The plan a new attempt starts with (a recovery restarts every subtask): each chain asked to run at a lower
 * parallelism than it does (per vertex in `desired`, as a rescale request records it) at that parallelism; state
 * restores at any parallelism, by key group. Never higher: a recovery asks the pool for no more slots than the attempt
 * it replaces, and a rescale up goes live, with its wait for slots and its roll-back. The same plan when no chain
 * goes down.
 */
export function planDownToDesired(plan: JobPlan, chains: readonly Chain[], desired: Readonly<Record<string, number>>): JobPlan {
  let vertices: Record<string, VertexPlan> | undefined;
  for (const c of chains) {
    const want = desired[c.id];
    if (want === undefined || want < 1 || want >= c.parallelism) continue;
    vertices ??= { ...plan.vertices };
    for (const v of c.vertices) {
      const { incarnations: _, ...was } = vertices[v.id]!;
      vertices[v.id] = { ...was, parallelism: want };
    }
  }
  return vertices ? { ...plan, vertices } : plan;
}

/** Operators that run together in one subtask, joined by forward edges, as Flink chains them. */
export interface Chain {
  /** The head vertex's id; a task names its chain by it. */
  id: string;
  vertices: Vertex[];
  parallelism: number;
  /** Edges from other chains into the head. */
  inputs: Edge[];
  /** Edges from the tail to other chains. */
  outputs: Edge[];
}

/**
 * Groups vertices into chains: an edge is chained when it is `forward`, both ends have equal parallelism,
 * and it is the only output of its start and the only input of its end.
 */
export function buildChains(graph: Graph, plan: JobPlan): Chain[] {
  const p = (id: string) => plan.vertices[id]?.parallelism ?? graph.vertices.find((v) => v.id === id)!.parallelism;
  const outs = (id: string) => graph.edges.filter((e) => e.from === id);
  const ins = (id: string) => graph.edges.filter((e) => e.to === id);
  // A side output's edge is never chained: the router, not a function call, picks its records out.
  const chained = (e: Edge) =>
    !e.output && e.partitioning === 'forward' && p(e.from) === p(e.to) && outs(e.from).length === 1 && ins(e.to).length === 1;
  const byId = new Map(graph.vertices.map((v) => [v.id, v]));
  const chains: Chain[] = [];
  for (const head of graph.vertices) {
    if (ins(head.id).some(chained)) continue;
    const vertices = [head];
    let tail = head;
    for (;;) {
      const next = outs(tail.id).find(chained);
      if (!next) break;
      tail = byId.get(next.to)!;
      vertices.push(tail);
    }
    chains.push({ id: head.id, vertices, parallelism: p(head.id), inputs: ins(head.id), outputs: outs(tail.id) });
  }
  return chains;
}

/** The chain that holds a vertex. */
export function chainOf(chains: readonly Chain[], vertexId: string): Chain | undefined {
  return chains.find((c) => c.vertices.some((v) => v.id === vertexId));
}

/**
 * The fields a record needs on its way over `edge` into the chain `consumer`, when the chain's head reads only some
 * (`OperatorSpec.inputFields`): those and the edge's key. Undefined: the whole record goes. Records are cut at the
 * producer, before they are encoded, as Flink's planner projects before an exchange; a name with a dot (a field in a
 * nested object), or one of Object's own, keeps the record whole.
 */
export function edgeProjection(edge: Edge, consumer: Chain): readonly string[] | undefined {
  const head = consumer.vertices[0];
  if (head?.id !== edge.to) return undefined;
  const spec = operatorSpec(head.type);
  const fields = spec?.inputFields?.(head.settings);
  if (!fields) return undefined;
  const keyed = edge.partitioning === 'hash' && edge.key !== undefined;
  if (spec!.kind === 'keyed' && !keyed) return undefined;
  const all = [...new Set(keyed ? [edge.key!, ...fields] : fields)];
  // A name every object answers to (`constructor`, `__proto__`) would be copied off the prototype: kept whole too.
  return all.some((f) => f.includes('.') || f in Object.prototype) ? undefined : all;
}

/** The producer subtasks that feed consumer subtask `index` over an edge. */
export function producersFor(edge: Edge, index: number, producerParallelism: number): number[] {
  if (edge.partitioning === 'forward') return [index];
  return Array.from({ length: producerParallelism }, (_, i) => i);
}

/** The consumer subtasks producer subtask `index` writes to over an edge. */
export function consumersFor(edge: Edge, index: number, consumerParallelism: number): number[] {
  if (edge.partitioning === 'forward') return [index];
  return Array.from({ length: consumerParallelism }, (_, j) => j);
}
