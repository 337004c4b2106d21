import { generatorSettings, type Chain, type Graph } from '@keyflow/core';
import { Refused } from './refusal.ts';

/** What one job may ask of the pool (KEYFLOW_MAX_*), checked when it is deployed and when it is rescaled. */
export interface Quotas {
  /** Subtasks in all: what the job takes of the pool's worker slots (a chain's operators share one). */
  maxSubtasksPerJob: number;
  /** Parallelism of any one operator. */
  maxParallelism: number;
  /** Distinct keys of a generator source. */
  maxGeneratorKeys: number;
}

const count = (n: number) => n.toLocaleString('en-US');

/** The subtasks a job runs when each chain has the parallelism `parallelismOf` gives it. */
export function subtasksOf(chains: readonly Chain[], parallelismOf: (chain: Chain) => number = (c) => c.parallelism): number {
  return chains.reduce((sum, c) => sum + parallelismOf(c), 0);
}

/** Refuses (422) a deploy whose operators, in all or one by one, ask for more than the quotas allow. */
export function checkDeployQuotas(graph: Graph, chains: readonly Chain[], quotas: Quotas): void {
  for (const v of graph.vertices) {
    if (v.parallelism > quotas.maxParallelism) throw parallelismRefusal(v.id, v.parallelism, quotas);
    if (v.type !== 'generator') continue;
    const settings = generatorSettings.safeParse(v.settings);
    if (settings.success && settings.data.keys > quotas.maxGeneratorKeys)
      throw new Refused(
        'invalid',
        `generator ${v.id} asks for ${count(settings.data.keys)} keys; KEYFLOW_MAX_GENERATOR_KEYS allows ${count(quotas.maxGeneratorKeys)}`,
      );
  }
  const subtasks = subtasksOf(chains);
  if (subtasks > quotas.maxSubtasksPerJob)
    throw new Refused(
      'invalid',
      `this job asks for ${count(subtasks)} subtasks; KEYFLOW_MAX_SUBTASKS_PER_JOB allows ${count(quotas.maxSubtasksPerJob)}`,
    );
}

/**
 * Refuses (422) a rescale that asks for more than the quotas allow: `requested` is the parallelism asked for per
 * operator, `current` an operator's parallelism until now, and `subtasks` the job's subtasks as asked for until now
 * and with this request. Asking for less is always allowed: a job deployed under higher quotas can scale down.
 */
export function checkRescaleQuotas(
  requested: Record<string, number>,
  current: (vertexId: string) => number,
  subtasks: { before: number; after: number },
  quotas: Quotas,
): void {
  for (const [vertexId, p] of Object.entries(requested))
    if (p > quotas.maxParallelism && p > current(vertexId)) throw parallelismRefusal(vertexId, p, quotas);
  if (subtasks.after > quotas.maxSubtasksPerJob && subtasks.after > subtasks.before)
    throw new Refused(
      'invalid',
      `this rescale asks for ${count(subtasks.after)} subtasks in the job; KEYFLOW_MAX_SUBTASKS_PER_JOB allows ${count(quotas.maxSubtasksPerJob)}`,
    );
}

function parallelismRefusal(vertexId: string, parallelism: number, quotas: Quotas): Refused {
  return new Refused(
    'invalid',
    `${vertexId} asks for parallelism ${count(parallelism)}; KEYFLOW_MAX_PARALLELISM allows ${count(quotas.maxParallelism)}`,
  );
}
