import type { Stall } from '@keyflow/api';
import { buildChains, graphSchema, type Chain, type JobPlan } from '@keyflow/core';

// A stalled job on the job page: who holds it up, on which nodes, for how long, and when it fails over.

/** One subtask that holds the job up, with the operators its chain runs (a chain's subtask is one task). */
export interface Culprit {
  /** As the control plane names it: `chainId#index`. */
  subtask: string;
  index: number;
  /** The operators of its chain, head first. */
  vertices: string[];
  reason: string;
  since: string;
}

/** The job's chains (core's, as the control plane builds them), or none for a graph that does not parse. */
export function jobChains(graph: unknown, plan: JobPlan): Chain[] {
  const parsed = graphSchema.safeParse(graph);
  return parsed.success ? buildChains(parsed.data, plan) : [];
}

export function culprits(stall: Stall, chains: readonly Chain[]): Culprit[] {
  return stall.subtasks.map((s) => {
    const cut = s.subtask.lastIndexOf('#');
    const chainId = s.subtask.slice(0, cut);
    const chain = chains.find((c) => c.id === chainId);
    return { ...s, index: Number(s.subtask.slice(cut + 1)), vertices: chain ? chain.vertices.map((v) => v.id) : [chainId] };
  });
}

/** "count#0", or "count#0 (with out#0)" for a chain. */
export function culpritName(c: Culprit): string {
  const [head, ...rest] = c.vertices;
  return rest.length ? `${head}#${c.index} (with ${rest.map((v) => `${v}#${c.index}`).join(', ')})` : `${head}#${c.index}`;
}

/** Per operator that holds the job up, why, subtask by subtask: its node is marked on the graph. */
export function stalledOperators(list: readonly Culprit[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const c of list) for (const v of c.vertices) out.set(v, [...(out.get(v) ?? []), `${v}#${c.index} ${c.reason}`]);
  return out;
}

/** Whole seconds from `from` to `to`, never negative: "how long" and "in how long" as the page counts them. */
export const secondsBetween = (from: string | number, to: string | number) =>
  Math.max(0, Math.round((new Date(to).getTime() - new Date(from).getTime()) / 1000));

/** When the job fails over unless it moves again, as of `now`. */
export function failoverText(failoverAt: string, now: number): string {
  return Date.parse(failoverAt) > now ? `fails over in ${secondsBetween(now, failoverAt)} s` : 'failing over now';
}
