import { buildChains, initialPlan, validateGraph, type GraphInput } from '@keyflow/core';
import { describe, expect, it } from 'vitest';
import { checkDeployQuotas, checkRescaleQuotas, type Quotas } from './quotas.ts';
import { Refused } from './refusal.ts';

const quotas: Quotas = { maxSubtasksPerJob: 256, maxParallelism: 128, maxGeneratorKeys: 1_000_000 };

/** events → keyBy(user) → count (p) → forward → log (p, chained with count): 1 + p subtasks. */
function graph(p: number, keys = 1000, maxParallelism?: number): GraphInput {
  return {
    vertices: [
      { id: 'events', type: 'generator', parallelism: 1, settings: { keys } },
      { id: 'count', type: 'count', parallelism: p, ...(maxParallelism && { maxParallelism }) },
      { id: 'log', type: 'log', parallelism: p, ...(maxParallelism && { maxParallelism }) },
    ],
    edges: [
      { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
      { from: 'count', to: 'log', partitioning: 'forward' },
    ],
  };
}

function deploy(input: GraphInput, q: Quotas = quotas): void {
  const valid = validateGraph(input);
  if (!valid.ok) throw new Error(valid.issues[0]!.message);
  checkDeployQuotas(valid.graph, buildChains(valid.graph, initialPlan(valid.graph)), q);
}

/** The refusal `fn` throws: always 'invalid' (answered 422). */
function refusal(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(Refused);
    expect((err as Refused).kind).toBe('invalid');
    return (err as Error).message;
  }
  throw new Error('expected a refusal');
}

describe('checkDeployQuotas', () => {
  it('lets a job within every quota through, counting chained operators as one subtask', () => {
    expect(() => deploy(graph(128))).not.toThrow();
    expect(() => deploy(graph(10), { ...quotas, maxSubtasksPerJob: 11 })).not.toThrow();
  });

  it.each<[string, GraphInput, Quotas, string]>([
    [
      'too many subtasks in all',
      graph(999, 1000, 1024),
      { ...quotas, maxParallelism: 1024 },
      'this job asks for 1,000 subtasks; KEYFLOW_MAX_SUBTASKS_PER_JOB allows 256',
    ],
    [
      'one subtask too many',
      graph(10),
      { ...quotas, maxSubtasksPerJob: 10 },
      'this job asks for 11 subtasks; KEYFLOW_MAX_SUBTASKS_PER_JOB allows 10',
    ],
    ['an operator above the parallelism quota', graph(200, 1000, 256), quotas, 'count asks for parallelism 200; KEYFLOW_MAX_PARALLELISM allows 128'],
    [
      'a generator with more keys than allowed',
      graph(2, 5_000_000),
      quotas,
      'generator events asks for 5,000,000 keys; KEYFLOW_MAX_GENERATOR_KEYS allows 1,000,000',
    ],
  ])('refuses %s, naming the limit', (_name, input, q, message) => {
    expect(refusal(() => deploy(input, q))).toBe(message);
  });
});

describe('checkRescaleQuotas', () => {
  const current = () => 8;

  it('refuses asking for more than allowed, naming the limit', () => {
    expect(refusal(() => checkRescaleQuotas({ count: 300 }, current, { before: 9, after: 301 }, { ...quotas, maxParallelism: 512 }))).toBe(
      'this rescale asks for 301 subtasks in the job; KEYFLOW_MAX_SUBTASKS_PER_JOB allows 256',
    );
    expect(refusal(() => checkRescaleQuotas({ count: 129 }, current, { before: 9, after: 130 }, quotas))).toBe(
      'count asks for parallelism 129; KEYFLOW_MAX_PARALLELISM allows 128',
    );
  });

  it('always lets a job scale down, even one deployed under higher quotas', () => {
    const low = { ...quotas, maxSubtasksPerJob: 4, maxParallelism: 2 };
    expect(() => checkRescaleQuotas({ count: 6 }, current, { before: 9, after: 7 }, low)).not.toThrow();
    expect(() => checkRescaleQuotas({ count: 2 }, current, { before: 9, after: 3 }, low)).not.toThrow();
  });
});
