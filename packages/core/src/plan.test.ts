import { describe, expect, it } from 'vitest';
import { demoPipeline } from './demo.ts';
import type { Edge, Graph, GraphInput, Partitioning } from './graph.ts';
import { validateGraph } from './graphRules.ts';
import {
  buildChains,
  chainOf,
  consumersFor,
  edgeProjection,
  incarnationOf,
  initialPlan,
  planDownToDesired,
  producersFor,
  rescaledPlan,
  type JobPlan,
} from './plan.ts';

const settingsOf: Record<string, Record<string, unknown>> = {
  generator: { splits: 4 },
  filter: { field: 'amount', op: 'gt', value: 1 },
  map: { steps: [{ op: 'drop', fields: ['item'] }] },
  count: {},
  sum: { field: 'amount' },
  statefulCounter: {},
  log: {},
};

/** A validated graph from `id:type:parallelism` vertices and `from-partitioning->to` edges. */
function graph(vertices: string[], edges: string[]): Graph {
  const input: GraphInput = {
    vertices: vertices.map((spec) => {
      const [id, type, p] = spec.split(':') as [string, string, string];
      return { id, type, parallelism: Number(p), settings: settingsOf[type] };
    }),
    edges: edges.map((spec) => {
      const [, from, partitioning, to] = /^(\w+)-(\w+)->(\w+)$/.exec(spec)!;
      return { from: from!, to: to!, partitioning: partitioning as Partitioning, ...(partitioning === 'hash' ? { key: 'user' } : {}) };
    }),
  };
  const r = validateGraph(input);
  if (!r.ok) throw new Error(`test graph is invalid: ${JSON.stringify(r.issues)}`);
  return r.graph;
}

const shape = (g: Graph, plan: JobPlan = initialPlan(g)) =>
  buildChains(g, plan).map((c) => ({
    id: c.id,
    vertices: c.vertices.map((v) => v.id),
    parallelism: c.parallelism,
    inputs: c.inputs.map((e) => `${e.from}->${e.to}`),
    outputs: c.outputs.map((e) => `${e.from}->${e.to}`),
  }));

describe('buildChains', () => {
  it('chains generator -hash-> count -forward-> sink (p2, p2) into 2 chains', () => {
    const g = graph(['gen:generator:2', 'count:count:2', 'out:log:2'], ['gen-hash->count', 'count-forward->out']);
    expect(shape(g)).toEqual([
      { id: 'gen', vertices: ['gen'], parallelism: 2, inputs: [], outputs: ['gen->count'] },
      { id: 'count', vertices: ['count', 'out'], parallelism: 2, inputs: ['gen->count'], outputs: [] },
    ]);
  });

  it('chains the demo pipeline the same way', () => {
    const r = validateGraph(demoPipeline);
    if (!r.ok) throw new Error('demo pipeline is invalid');
    expect(shape(r.graph).map((c) => c.vertices)).toEqual([['events'], ['count', 'results']]);
  });

  it('chains a run of forward edges into one chain', () => {
    const g = graph(
      ['gen:generator:3', 'f:filter:3', 'm:map:3', 'count:count:2', 'out:log:2'],
      ['gen-forward->f', 'f-forward->m', 'm-hash->count', 'count-forward->out'],
    );
    expect(shape(g)).toEqual([
      { id: 'gen', vertices: ['gen', 'f', 'm'], parallelism: 3, inputs: [], outputs: ['m->count'] },
      { id: 'count', vertices: ['count', 'out'], parallelism: 2, inputs: ['m->count'], outputs: [] },
    ]);
  });

  it('does not chain a forward edge whose ends have different parallelism in the plan (mid-rescale)', () => {
    const g = graph(['gen:generator:2', 'count:count:2', 'out:log:2'], ['gen-hash->count', 'count-forward->out']);
    const plan = initialPlan(g);
    plan.vertices.out = { parallelism: 3, maxParallelism: 128 };
    expect(shape(g, plan)).toEqual([
      { id: 'gen', vertices: ['gen'], parallelism: 2, inputs: [], outputs: ['gen->count'] },
      { id: 'count', vertices: ['count'], parallelism: 2, inputs: ['gen->count'], outputs: ['count->out'] },
      { id: 'out', vertices: ['out'], parallelism: 3, inputs: ['count->out'], outputs: [] },
    ]);
  });

  it('does not chain the forward edges of a vertex with two outputs', () => {
    const g = graph(
      ['gen:generator:2', 'f:filter:2', 'm:map:2', 'a:log:2', 'b:log:2'],
      ['gen-forward->f', 'gen-forward->m', 'f-forward->a', 'm-forward->b'],
    );
    expect(shape(g).map((c) => c.vertices)).toEqual([['gen'], ['f', 'a'], ['m', 'b']]);
  });

  it('does not chain the forward edges into a vertex with two inputs', () => {
    const g = graph(['g1:generator:2', 'g2:generator:2', 'm:map:2', 'out:log:2'], ['g1-forward->m', 'g2-forward->m', 'm-forward->out']);
    expect(shape(g).map((c) => c.vertices)).toEqual([['g1'], ['g2'], ['m', 'out']]);
  });

  it.each<Partitioning>(['hash', 'rebalance', 'broadcast'])('does not chain a %s edge of equal parallelism', (partitioning) => {
    const g = graph(['gen:generator:2', 'm:map:2', 'out:log:2'], [`gen-${partitioning}->m`, 'm-forward->out']);
    expect(shape(g).map((c) => c.vertices)).toEqual([['gen'], ['m', 'out']]);
  });

  it('chainOf finds the chain holding a vertex', () => {
    const g = graph(['gen:generator:2', 'count:count:2', 'out:log:2'], ['gen-hash->count', 'count-forward->out']);
    const chains = buildChains(g, initialPlan(g));
    expect(chainOf(chains, 'out')?.id).toBe('count');
    expect(chainOf(chains, 'gen')?.id).toBe('gen');
    expect(chainOf(chains, 'nope')).toBeUndefined();
  });
});

describe('initialPlan', () => {
  /** The plan of generator → v → log, with v given as a partial vertex. */
  function planOf(v: Record<string, unknown>): JobPlan {
    const keyed = v.type === 'count';
    const r = validateGraph({
      vertices: [...(keyed ? [{ id: 'gen', type: 'generator', parallelism: 1 }] : []), { id: 'v', ...v }, { id: 'out', type: 'log', parallelism: 1 }],
      edges: [...(keyed ? [{ from: 'gen', to: 'v', partitioning: 'hash', key: 'user' }] : []), { from: 'v', to: 'out', partitioning: 'rebalance' }],
    });
    if (!r.ok) throw new Error(`test graph is invalid: ${JSON.stringify(r.issues)}`);
    return initialPlan(r.graph);
  }

  it.each<[Record<string, unknown>, number, number]>([
    [{ splits: 4 }, 2, 4],
    [{ splits: 1 }, 1, 1],
    [{}, 3, 16],
  ])('a generator with settings %j at p%i gets its splits (%i) as maxParallelism', (settings, parallelism, maxParallelism) => {
    expect(planOf({ type: 'generator', parallelism, settings }).vertices.v).toEqual({ parallelism, maxParallelism });
  });

  it.each([
    [1, 128],
    [2, 128],
    [100, 256],
    [300, 512],
  ])('count at p%i gets defaultMaxParallelism %i', (parallelism, maxParallelism) => {
    expect(planOf({ type: 'count', parallelism }).vertices.v).toEqual({ parallelism, maxParallelism });
  });

  it('keeps an explicit maxParallelism', () => {
    expect(planOf({ type: 'count', parallelism: 2, maxParallelism: 64 }).vertices.v).toEqual({ parallelism: 2, maxParallelism: 64 });
  });

  it('plans every vertex of the demo pipeline', () => {
    const r = validateGraph(demoPipeline);
    if (!r.ok) throw new Error('demo pipeline is invalid');
    expect(initialPlan(r.graph)).toEqual({
      vertices: {
        events: { parallelism: 1, maxParallelism: 16 },
        count: { parallelism: 2, maxParallelism: 128 },
        results: { parallelism: 2, maxParallelism: 128 },
      },
    });
  });
});

describe('producersFor / consumersFor', () => {
  const e = (partitioning: Partitioning): Edge => ({ from: 'a', to: 'b', partitioning });

  it.each<[Partitioning, number[], number[]]>([
    ['forward', [2], [2]],
    ['hash', [0, 1, 2, 3], [0, 1, 2]],
    ['rebalance', [0, 1, 2, 3], [0, 1, 2]],
    ['broadcast', [0, 1, 2, 3], [0, 1, 2]],
  ])('%s: subtask 2 reads from %j and writes to %j (4 producers, 3 consumers)', (partitioning, producers, consumers) => {
    expect(producersFor(e(partitioning), 2, 4)).toEqual(producers);
    expect(consumersFor(e(partitioning), 2, 3)).toEqual(consumers);
  });
});

describe('edgeProjection: the fields a record keeps over a channel', () => {
  /** The projection of the edge into `to`, in the graph's own chains. */
  const projection = (g: Graph, to: string) => {
    const chains = buildChains(g, initialPlan(g));
    return edgeProjection(
      g.edges.find((e) => e.to === to)!,
      chainOf(chains, to)!,
    );
  };

  it("count reads only its key: the generator's events cross to it as {user}", () => {
    const g = graph(['gen:generator:2', 'count:count:2', 'out:log:2'], ['gen-hash->count', 'count-forward->out']);
    expect(projection(g, 'count')).toEqual(['user']);
  });

  it('sum reads its key and the field it adds up', () => {
    const g = graph(['gen:generator:2', 'total:sum:3', 'out:log:3'], ['gen-hash->total', 'total-forward->out']);
    expect(projection(g, 'total')).toEqual(['user', 'amount']);
  });

  it('sends whole records to operators that pass input records on, or whose reads are not known', () => {
    // statefulCounter shows the whole record in its message; filter passes it through; log prints it.
    const g = graph(['gen:generator:2', 'sc:statefulCounter:3', 'f:filter:1', 'out:log:2'], ['gen-hash->sc', 'sc-rebalance->f', 'f-rebalance->out']);
    expect(projection(g, 'sc')).toBeUndefined();
    expect(projection(g, 'f')).toBeUndefined();
    expect(projection(g, 'out')).toBeUndefined();
  });

  it('keeps records whole when the key is a nested field (a dotted name)', () => {
    const g = graph(['gen:generator:2', 'count:count:2', 'out:log:2'], ['gen-hash->count', 'count-forward->out']);
    const edge = { ...g.edges[0]!, key: 'user.id' };
    expect(edgeProjection(edge, chainOf(buildChains(g, initialPlan(g)), 'count')!)).toBeUndefined();
  });

  it('keeps records whole when a field is named like a property every object has', () => {
    const g = graph(['gen:generator:2', 'total:sum:3', 'out:log:3'], ['gen-hash->total', 'total-forward->out']);
    const chain = chainOf(buildChains(g, initialPlan(g)), 'total')!;
    const odd = { ...chain, vertices: [{ ...chain.vertices[0]!, settings: { field: 'constructor' } }] };
    expect(edgeProjection(g.edges[0]!, odd)).toBeUndefined();
  });

  it("keeps a sum's input whole when its settings do not parse (its dead letters then show the record)", () => {
    const g = graph(['gen:generator:2', 'total:sum:3', 'out:log:3'], ['gen-hash->total', 'total-forward->out']);
    const chain = chainOf(buildChains(g, initialPlan(g)), 'total')!;
    const broken = { ...chain, vertices: [{ ...chain.vertices[0]!, settings: {} }] };
    expect(edgeProjection(g.edges[0]!, broken)).toBeUndefined();
  });
});

describe('rescaledPlan: incarnations', () => {
  const g = graph(['gen:generator:1', 'count:count:2', 'out:log:2'], ['gen-hash->count', 'count-forward->out']);
  const chainAt = (plan: JobPlan) => chainOf(buildChains(g, plan), 'count')!;
  /** Applies rescales [parallelism, scalingId] in turn; returns count's incarnation per index after each. */
  const walk = (steps: [number, number][]) => {
    let plan = initialPlan(g);
    return steps.map(([p, id]) => {
      plan = rescaledPlan(plan, chainAt(plan), p, id);
      return Array.from({ length: p }, (_, i) => incarnationOf(plan, 'count', i));
    });
  };

  it.each<[string, [number, number][], number[][]]>([
    ['up adds incarnations named by the rescale', [[4, 7]], [[0, 0, 7, 7]]],
    ['down keeps the survivors', [[1, 7]], [[0]]],
    [
      'down then up never reuses an index incarnation',
      [
        [1, 7],
        [2, 8],
      ],
      [[0], [0, 8]],
    ],
    [
      '3→2→3 gives index 2 a new incarnation',
      [
        [3, 5],
        [2, 6],
        [3, 9],
      ],
      [
        [0, 0, 5],
        [0, 0],
        [0, 0, 9],
      ],
    ],
    ['same parallelism changes nothing', [[2, 7]], [[0, 0]]],
  ])('%s', (_, steps, expected) => {
    expect(walk(steps)).toEqual(expected);
  });

  it('moves the whole chain and leaves other vertices and the input plan alone', () => {
    const plan = initialPlan(g);
    const next = rescaledPlan(plan, chainAt(plan), 3, 4);
    expect(next.vertices.count).toEqual({ parallelism: 3, maxParallelism: 128, incarnations: [0, 0, 4] });
    expect(next.vertices.out).toEqual({ parallelism: 3, maxParallelism: 128, incarnations: [0, 0, 4] });
    expect(next.vertices.gen).toBe(plan.vertices.gen);
    expect(plan.vertices.count).toEqual({ parallelism: 2, maxParallelism: 128 });
    // Back to only the attempt's own subtasks: the plan looks as it did at deploy.
    expect(rescaledPlan(next, chainAt(next), 2, 5).vertices.count).toEqual({ parallelism: 2, maxParallelism: 128 });
  });
});

describe('planDownToDesired: the plan a recovery starts with', () => {
  const g = graph(['gen:generator:1', 'count:count:3', 'out:log:3'], ['gen-hash->count', 'count-forward->out']);
  const chains = (plan: JobPlan) => buildChains(g, plan);

  it('takes every vertex of a chain asked to go down to that parallelism, as the attempt’s own subtasks', () => {
    const rescaled = rescaledPlan(initialPlan(g), chainOf(chains(initialPlan(g)), 'count')!, 4, 7);
    const plan = planDownToDesired(rescaled, chains(rescaled), { gen: 1, count: 2, out: 2 });
    expect(plan.vertices).toEqual({
      gen: { parallelism: 1, maxParallelism: 4 },
      count: { parallelism: 2, maxParallelism: 128 },
      out: { parallelism: 2, maxParallelism: 128 },
    });
    expect(shape(g, plan).find((c) => c.id === 'count')).toMatchObject({ vertices: ['count', 'out'], parallelism: 2 });
  });

  it('never goes up, and gives the same plan when no chain goes down', () => {
    const plan = initialPlan(g);
    expect(planDownToDesired(plan, chains(plan), { gen: 4, count: 5, out: 5 })).toBe(plan);
    expect(planDownToDesired(plan, chains(plan), { gen: 1, count: 3, out: 3 })).toBe(plan);
    expect(planDownToDesired(plan, chains(plan), {})).toBe(plan);
    expect(planDownToDesired(plan, chains(plan), { gen: 2, count: 1, out: 1 }).vertices).toMatchObject({
      gen: { parallelism: 1 },
      count: { parallelism: 1 },
    });
  });
});
