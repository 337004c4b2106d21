import { clearUserOperators, defineOperator, registerOperator, type GraphInput, type OperatorDefinition } from '@keyflow/core';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { keyWarning, poolWarning, sideOutputWarning, slotsNeeded } from './warnings';

const graph = (p: { gen?: number; count?: number; out?: number }, outEdge: 'forward' | 'rebalance' = 'rebalance'): GraphInput => ({
  vertices: [
    { id: 'gen', type: 'generator', parallelism: p.gen ?? 1 },
    { id: 'count', type: 'count', parallelism: p.count ?? 1 },
    { id: 'out', type: 'log', parallelism: p.out ?? 1 },
  ],
  edges: [
    { from: 'gen', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'out', partitioning: outEdge },
  ],
});

describe('the slots a pipeline takes', () => {
  it.each<[string, GraphInput, number]>([
    ['one per subtask', graph({ gen: 2, count: 12, out: 1 }), 15],
    ['forward edges chain operators into one subtask', graph({ count: 4, out: 4 }, 'forward'), 5],
  ])('%s', (_name, g, slots) => {
    expect(slotsNeeded(g)).toBe(slots);
  });

  it('not for a graph that is no graph yet', () => {
    expect(slotsNeeded({ vertices: [], edges: [] })).toBeUndefined();
    expect(
      slotsNeeded({ vertices: [{ id: 'a', type: 'log', parallelism: 1 }], edges: [{ from: 'a', to: 'ghost', partitioning: 'forward' }] }),
    ).toBeUndefined();
  });
});

describe('a warning when the pool cannot run a pipeline whole', () => {
  const pool = [
    { slots: 4, usedSlots: 1 },
    { slots: 4, usedSlots: 2 },
  ];
  it.each<[number | undefined, typeof pool | undefined, string | undefined]>([
    [12, pool, 'the pool has 8 slots; this pipeline needs 12'],
    [6, pool, "5 of the pool's 8 slots are free; this pipeline needs 6"],
    [5, pool, undefined],
    [1, [], 'the pool has 0 slots; this pipeline needs 1'],
    [2, [{ slots: 1, usedSlots: 0 }], 'the pool has 1 slot; this pipeline needs 2'],
    [12, undefined, undefined],
    [undefined, pool, undefined],
  ])('%s subtasks', (needed, workers, warning) => {
    expect(poolWarning(needed, workers)).toBe(warning);
  });
});

describe('a warning when a hash key is not a field the upstream is known to emit', () => {
  const g = graph({});
  it.each<[string, Parameters<typeof keyWarning>[1], string | undefined]>([
    ['a known field', { from: 'gen', partitioning: 'hash', key: 'user' }, undefined],
    [
      'a typo',
      { from: 'gen', partitioning: 'hash', key: 'usr' },
      "gen is not known to emit 'usr' (its records have user, item, amount, ts); records without it go to dead letters",
    ],
    [
      'a field of the source behind a keyed operator',
      { from: 'count', partitioning: 'hash', key: 'user' },
      "count is not known to emit 'user' (its records have key, count); records without it go to dead letters",
    ],
    ['no key yet: an issue, not a warning', { from: 'gen', partitioning: 'hash' }, undefined],
    ['an unknown upstream', { from: 'ghost', partitioning: 'hash', key: 'x' }, undefined],
  ])('%s', (_name, edge, warning) => {
    expect(keyWarning(g, edge)).toBe(warning);
  });
});

describe('side outputs nobody reads', () => {
  const splitter = defineOperator({
    kind: 'splitter',
    title: 'Splitter',
    description: 'odd records to odd, the rest to rest',
    settings: z.object({}),
    inputs: 'any',
    outputs: ['odd', 'rest'],
    process: () => {},
  });
  const graph = (outputs: string[]): GraphInput => ({
    vertices: [
      { id: 'gen', type: 'generator', parallelism: 1 },
      { id: 'split', type: 'splitter', parallelism: 1 },
      { id: 'out', type: 'log', parallelism: 1 },
    ],
    edges: [
      { from: 'gen', to: 'split', partitioning: 'forward' },
      ...outputs.map((output) => ({ from: 'split', to: 'out', partitioning: 'rebalance' as const, output })),
    ],
  });

  it('are named, with what becomes of their records; connected ones are not', () => {
    registerOperator(splitter as unknown as OperatorDefinition, 'splitter@1');
    try {
      expect(sideOutputWarning(graph([]), 'split')).toBe(
        "side outputs 'odd', 'rest' are not connected: what split sends there is dropped (draw an edge from their handles to keep it)",
      );
      expect(sideOutputWarning(graph(['odd']), 'split')).toBe(
        "side output 'rest' is not connected: what split sends there is dropped (draw an edge from its handle to keep it)",
      );
      expect(sideOutputWarning(graph(['odd', 'rest']), 'split')).toBeUndefined();
      expect(sideOutputWarning(graph([]), 'gen')).toBeUndefined();
    } finally {
      clearUserOperators();
    }
  });
});
