import { describe, expect, it } from 'vitest';
import { demoPipeline } from './demo.ts';
import { graphSchema, type Graph, type GraphInput } from './graph.ts';
import { connectionProblem, knownFields, validateGraph, type GraphIssue } from './graphRules.ts';

/** generator → filter → map → statefulCounter → log, all valid. */
function pipeline(): GraphInput {
  return {
    vertices: [
      { id: 'gen', type: 'generator', parallelism: 2, settings: { seed: 1, keys: 100, splits: 4 } },
      { id: 'big', type: 'filter', parallelism: 2, settings: { field: 'amount', op: 'gt', value: 50 } },
      { id: 'shape', type: 'map', parallelism: 2, settings: { steps: [{ op: 'pick', fields: ['user', 'amount'] }] } },
      { id: 'counter', type: 'statefulCounter', parallelism: 3, settings: { field: 'user' } },
      { id: 'out', type: 'log', parallelism: 1 },
    ],
    edges: [
      { from: 'gen', to: 'big', partitioning: 'forward' },
      { from: 'big', to: 'shape', partitioning: 'forward' },
      { from: 'shape', to: 'counter', partitioning: 'hash', key: 'user' },
      { from: 'counter', to: 'out', partitioning: 'rebalance' },
    ],
  };
}

type Mutable = { vertices: Record<string, unknown>[]; edges: Record<string, unknown>[] };

/** The pipeline above, changed by `edit`. */
function broken(edit: (g: Mutable) => void): unknown {
  const g = structuredClone(pipeline()) as unknown as Mutable;
  edit(g);
  return g;
}

const vertex = (g: Mutable, id: string) => g.vertices.find((v) => v.id === id)!;
const edge = (g: Mutable, from: string, to: string) => g.edges.find((e) => e.from === from && e.to === to)!;

function issuesOf(input: unknown): GraphIssue[] {
  const r = validateGraph(input);
  if (r.ok) throw new Error('expected the graph to be invalid');
  return r.issues;
}

describe('validateGraph accepts valid pipelines', () => {
  it.each<[string, GraphInput]>([
    ['the demo pipeline', demoPipeline],
    ['generator → filter → map → statefulCounter → log', pipeline()],
  ])('%s', (_name, input) => {
    const r = validateGraph(input);
    expect(r.ok ? [] : r.issues).toEqual([]);
  });

  it('keeps settings as the user typed them (durations stay text), so a stored pipeline validates again and reads back as written', () => {
    const graph = {
      vertices: [
        { id: 'events', type: 'generator', parallelism: 1, settings: { seed: 7, watermarkDelay: '2s' } },
        { id: 'w', type: 'window', parallelism: 1, settings: { size: '10s' } },
        { id: 'out', type: 'log', parallelism: 1 },
      ],
      edges: [
        { from: 'events', to: 'w', partitioning: 'hash', key: 'user' },
        { from: 'w', to: 'out', partitioning: 'forward' },
      ],
    };
    const r = validateGraph(graph);
    if (!r.ok) throw new Error(r.issues[0]!.message);
    expect(r.graph.vertices.map((v) => v.settings)).toEqual([{ seed: 7, watermarkDelay: '2s' }, { size: '10s' }, {}]);
    expect(validateGraph(r.graph).ok).toBe(true);
    expect(validateGraph(demoPipeline).ok && validateGraph(demoPipeline).ok).toBe(true);
  });
});

describe('validateGraph rejects invalid pipelines, naming the offender', () => {
  it.each<[string, unknown, Omit<Partial<GraphIssue>, 'message'> & { message: RegExp }]>([
    [
      'a cycle',
      broken((g) => {
        g.edges.push({ from: 'shape', to: 'big', partitioning: 'forward' });
      }),
      { vertexId: 'big', message: /^cycle: big → shape → big; pipelines must be acyclic$/ },
    ],
    [
      'a self loop',
      broken((g) => {
        g.edges.push({ from: 'shape', to: 'shape', partitioning: 'forward' });
      }),
      { edgeId: 'shape->shape', path: ['edges', 4], message: /edge shape->shape joins shape to itself/ },
    ],
    [
      'a keyed operator fed by a non-hash edge',
      broken((g) => {
        edge(g, 'shape', 'counter').partitioning = 'rebalance';
        delete edge(g, 'shape', 'counter').key;
      }),
      { vertexId: 'counter', edgeId: 'shape->counter', message: /counter is keyed: its input shape->counter must be a hash edge with a key/ },
    ],
    [
      'a keyed operator fed by a hash edge without a key',
      broken((g) => {
        delete edge(g, 'shape', 'counter').key;
      }),
      { edgeId: 'shape->counter', message: /hash edge shape->counter needs a key field \(keyBy\)/ },
    ],
    [
      'parallelism 0',
      broken((g) => {
        vertex(g, 'counter').parallelism = 0;
      }),
      { vertexId: 'counter', path: ['vertices', 3, 'parallelism'], message: /parallelism must be between 1 and 128/ },
    ],
    [
      'parallelism above an explicit maxParallelism',
      broken((g) => {
        vertex(g, 'counter').maxParallelism = 4;
        vertex(g, 'counter').parallelism = 5;
      }),
      { vertexId: 'counter', path: ['vertices', 3, 'parallelism'], message: /parallelism must be between 1 and 4 \(the operator's maxParallelism\)/ },
    ],
    [
      'parallelism above the upper bound',
      broken((g) => {
        vertex(g, 'counter').parallelism = 40_000;
      }),
      { vertexId: 'counter', message: /parallelism must be between 1 and 32768/ },
    ],
    [
      'generator parallelism above its splits',
      broken((g) => {
        vertex(g, 'gen').parallelism = 5;
        vertex(g, 'big').parallelism = 5;
        vertex(g, 'shape').parallelism = 5;
      }),
      { vertexId: 'gen', message: /parallelism must be between 1 and 4 \(the operator's maxParallelism, its splits\)/ },
    ],
    [
      'an unknown operator type',
      broken((g) => {
        vertex(g, 'shape').type = 'teleport';
      }),
      { vertexId: 'shape', path: ['vertices', 2, 'type'], message: /unknown operator type 'teleport'/ },
    ],
    [
      'an edge from an unknown operator',
      broken((g) => {
        g.edges.push({ from: 'ghost', to: 'out', partitioning: 'rebalance' });
      }),
      { edgeId: 'ghost->out', path: ['edges', 4, 'from'], message: /starts at unknown operator 'ghost'/ },
    ],
    [
      'an edge to an unknown operator',
      broken((g) => {
        g.edges.push({ id: 'e9', from: 'gen', to: 'ghost', partitioning: 'rebalance' });
      }),
      { edgeId: 'e9', path: ['edges', 4, 'to'], message: /edge e9 ends at unknown operator 'ghost'/ },
    ],
    [
      'duplicate operator ids',
      broken((g) => {
        g.vertices.push({ id: 'out', type: 'log', parallelism: 1 });
      }),
      { vertexId: 'out', path: ['vertices', 5, 'id'], message: /duplicate operator id 'out'/ },
    ],
    [
      'duplicate edges',
      broken((g) => {
        g.edges.push({ from: 'counter', to: 'out', partitioning: 'rebalance' });
      }),
      { edgeId: 'counter->out', path: ['edges', 4], message: /duplicate edge 'counter->out'/ },
    ],
    [
      'a source with an input',
      broken((g) => {
        g.edges.push({ from: 'shape', to: 'gen', partitioning: 'rebalance' });
      }),
      { vertexId: 'gen', edgeId: 'shape->gen', message: /gen is a source: it takes no input/ },
    ],
    [
      'a sink with an output',
      broken((g) => {
        g.vertices.push({ id: 'out2', type: 'log', parallelism: 1 });
        g.edges.push({ from: 'out', to: 'out2', partitioning: 'forward' });
      }),
      { vertexId: 'out', edgeId: 'out->out2', message: /out is a sink: it has no output/ },
    ],
    [
      'a forward edge with unequal parallelism',
      broken((g) => {
        vertex(g, 'big').parallelism = 3;
      }),
      { edgeId: 'gen->big', path: ['edges', 0, 'partitioning'], message: /forward edge gen->big needs equal parallelism \(gen has 2, big has 3\)/ },
    ],
    [
      "a postgres table 'Bad Name'",
      broken((g) => {
        vertex(g, 'out').type = 'postgres';
        vertex(g, 'out').settings = { table: 'Bad Name' };
      }),
      { vertexId: 'out', path: ['vertices', 4, 'settings', 'table'], message: /lower-case SQL identifier/ },
    ],
    // Sinks may not write into Keyflow's bookkeeping, Prisma's or Postgres's tables, nor name another schema.
    ...(
      [
        ['keyflow_sink_fence', /^'keyflow_sink_fence' is reserved: table names starting with keyflow_, _prisma or pg_ belong to Keyflow/],
        ['keyflow_sink_pending', /^'keyflow_sink_pending' is reserved/],
        ['KEYFLOW_Sink_Fence', /^'KEYFLOW_Sink_Fence' is reserved/],
        ['_prisma_migrations', /^'_prisma_migrations' is reserved/],
        ['pg_class', /^'pg_class' is reserved/],
        ['public.job', /^'public.job' names a schema: a sink's table is a plain name/],
        ['"public"."Job"', /names a schema/],
      ] as const
    ).map(([table, message]): [string, unknown, Pick<GraphIssue, 'vertexId' | 'path'> & { message: RegExp }] => [
      `a postgres table '${table}'`,
      broken((g) => {
        vertex(g, 'out').type = 'postgres';
        vertex(g, 'out').settings = { table };
      }),
      { vertexId: 'out', path: ['vertices', 4, 'settings', 'table'], message },
    ]),
    [
      'a generator rate of -1',
      broken((g) => {
        (vertex(g, 'gen').settings as Record<string, unknown>).rate = -1;
      }),
      { vertexId: 'gen', path: ['vertices', 0, 'settings', 'rate'], message: /.+/ },
    ],
    [
      'an unknown setting',
      broken((g) => {
        (vertex(g, 'big').settings as Record<string, unknown>).colour = 'red';
      }),
      { vertexId: 'big', path: ['vertices', 1, 'settings'], message: /colour/ },
    ],
    [
      'a vertex that fails the schema',
      broken((g) => {
        vertex(g, 'shape').parallelism = 1.5;
      }),
      { vertexId: 'shape', path: ['vertices', 2, 'parallelism'], message: /int/i },
    ],
    [
      'an edge that fails the schema',
      broken((g) => {
        edge(g, 'gen', 'big').partitioning = 'sideways';
      }),
      { edgeId: 'gen->big', path: ['edges', 0, 'partitioning'], message: /.+/ },
    ],
    ['a non-object', 'a graph', { path: [], message: /expected object/ }],
    ['null', null, { path: [], message: /expected object/ }],
    ['missing vertices', { edges: [] }, { path: ['vertices'], message: /expected array/ }],
    ['no vertices', { vertices: [], edges: [] }, { path: ['vertices'], message: /at least one operator/ }],
  ])('%s', (_name, input, want) => {
    expect(issuesOf(input)).toContainEqual(expect.objectContaining({ ...want, message: expect.stringMatching(want.message) }));
  });

  it('gives a reserved or schema-qualified table one issue, naming the rule', () => {
    for (const table of ['keyflow_sink_fence', 'public.keyflow_sink_fence', 'Keyflow_Sink_Pending']) {
      const input = broken((g) => {
        vertex(g, 'out').type = 'postgres';
        vertex(g, 'out').settings = { table };
      });
      expect(issuesOf(input).filter((i) => i.path.join('.') === 'vertices.4.settings.table')).toHaveLength(1);
    }
  });

  it('names every vertex of a longer cycle in order', () => {
    const input = broken((g) => {
      g.vertices.push({ id: 'again', type: 'map', parallelism: 2, settings: { steps: [{ op: 'drop', fields: ['item'] }] } });
      g.edges.push({ from: 'shape', to: 'again', partitioning: 'forward' }, { from: 'again', to: 'big', partitioning: 'forward' });
    });
    const cycles = issuesOf(input).filter((i) => i.message.startsWith('cycle'));
    expect(cycles.map((c) => c.message)).toEqual(['cycle: big → shape → again → big; pipelines must be acyclic']);
  });

  it('reports a keyed operator with no input and an operator with no output', () => {
    const input = broken((g) => {
      g.vertices.push({ id: 'lonely', type: 'count', parallelism: 1 });
    });
    expect(issuesOf(input)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ vertexId: 'lonely', message: 'lonely is keyed but has no keyed input' }),
        expect.objectContaining({ vertexId: 'lonely', message: 'lonely has no output: connect it to a sink' }),
      ]),
    );
  });

  it('requires a source', () => {
    expect(issuesOf({ vertices: [{ id: 'out', type: 'log', parallelism: 1 }], edges: [] })).toContainEqual(
      expect.objectContaining({ message: 'a pipeline needs a source' }),
    );
  });
});

describe('connectionProblem', () => {
  const graph = (): Graph => {
    const r = validateGraph(pipeline());
    if (!r.ok) throw new Error('pipeline is invalid');
    return r.graph;
  };

  it.each<[string, string, string, Parameters<typeof connectionProblem>[3], RegExp]>([
    ['a self loop', 'big', 'big', 'forward', /cannot feed itself/],
    ['a cycle', 'counter', 'big', 'rebalance', /connecting counter to big would make a cycle/],
    ['a cycle through a direct back edge', 'shape', 'big', undefined, /would make a cycle/],
    ['an output from a sink', 'out', 'big', 'rebalance', /out is a sink: it has no output/],
    ['an input to a source', 'big', 'gen', 'rebalance', /gen is a source: it takes no input/],
    ['a duplicate', 'gen', 'big', 'forward', /gen and big are already connected/],
    ['a non-hash input to a keyed operator', 'big', 'counter', 'rebalance', /counter is keyed: its input must be partitioned by key \(hash\)/],
    ['a broadcast input to a keyed operator', 'gen', 'counter', 'broadcast', /counter is keyed/],
    ['a forward edge between unequal parallelism', 'gen', 'out', 'forward', /forward edge needs equal parallelism \(gen has 2, out has 1\)/],
    ['an unknown start', 'ghost', 'out', 'rebalance', /no operator 'ghost'/],
    ['an unknown end', 'gen', 'ghost', 'rebalance', /no operator 'ghost'/],
  ])('refuses %s', (_name, from, to, partitioning, message) => {
    expect(connectionProblem(graph(), from, to, partitioning)).toMatch(message);
  });

  it.each<[string, string, Parameters<typeof connectionProblem>[3]]>([
    ['gen', 'counter', 'hash'],
    ['big', 'out', 'rebalance'],
    ['gen', 'out', 'broadcast'],
    ['big', 'counter', undefined],
  ])('accepts %s → %s (%s)', (from, to, partitioning) => {
    expect(connectionProblem(graph(), from, to, partitioning)).toBeUndefined();
  });
});

describe('knownFields: what an operator emits, from the sources through each operator', () => {
  const gen = { id: 'gen', type: 'generator', parallelism: 1 };
  const map = (steps: unknown) => ({ id: 'm', type: 'map', parallelism: 1, settings: { steps } });
  const chain = (...vertices: { id: string; type: string; parallelism: number; settings?: unknown }[]) => ({
    vertices,
    edges: vertices.slice(1).map((v, i) => ({ from: vertices[i]!.id, to: v.id })),
  });

  it.each<[string, Parameters<typeof knownFields>[0], string, string[] | undefined]>([
    ['a generator’s events', chain(gen), 'gen', ['user', 'item', 'amount', 'ts']],
    ['a filter passes its input through', pipeline(), 'big', ['user', 'item', 'amount', 'ts']],
    ['a pick keeps the fields it names that exist', pipeline(), 'shape', ['user', 'amount']],
    ['a pick of a field the input lacks', chain(gen, map([{ op: 'pick', fields: ['user', 'nope'] }])), 'm', ['user']],
    ['a drop', chain(gen, map([{ op: 'drop', fields: ['item', 'ts'] }])), 'm', ['user', 'amount']],
    ['a rename', chain(gen, map([{ op: 'rename', from: 'user', to: 'customer' }])), 'm', ['item', 'amount', 'ts', 'customer']],
    ['a rename of a missing field', chain(gen, map([{ op: 'rename', from: 'nope', to: 'x' }])), 'm', ['user', 'item', 'amount', 'ts']],
    ['a set adds its field', chain(gen, map([{ op: 'set', field: 'region', value: 'eu' }])), 'm', ['user', 'item', 'amount', 'ts', 'region']],
    [
      'steps in order',
      chain(
        gen,
        map([
          { op: 'pick', fields: ['user'] },
          { op: 'scale', field: 'user', factor: 2 },
        ]),
      ),
      'm',
      ['user'],
    ],
    ['a map whose steps do not parse yet passes through', chain(gen, map([{ op: 'pick' }])), 'm', ['user', 'item', 'amount', 'ts']],
    ['a keyed counter', pipeline(), 'counter', ['key', 'count', 'message']],
    ['a count', chain(gen, { id: 'c', type: 'count', parallelism: 1 }), 'c', ['key', 'count']],
    ['a sum', chain(gen, { id: 's', type: 'sum', parallelism: 1 }), 's', ['key', 'sum']],
    ['a sink emits nothing', pipeline(), 'out', []],
    ['a transform without input: unknown', chain({ id: 'f', type: 'filter', parallelism: 1 }), 'f', undefined],
    ['a keyed operator without input still emits its result', chain({ id: 'c', type: 'count', parallelism: 1 }), 'c', ['key', 'count']],
    [
      'downstream of an unknown type: unknown',
      chain({ id: 'x', type: 'mystery', parallelism: 1 }, { id: 'f', type: 'filter', parallelism: 1 }),
      'f',
      undefined,
    ],
    ['an unknown vertex', pipeline(), 'ghost', undefined],
  ])('%s', (_name, graph, vertexId, fields) => {
    expect(knownFields(graph, vertexId)).toEqual(fields);
  });

  it('joins what several inputs emit', () => {
    const graph = {
      vertices: [
        gen,
        map([{ op: 'set', field: 'region', value: 'eu' }]),
        { id: 'c', type: 'count', parallelism: 1 },
        { id: 'f', type: 'filter', parallelism: 1 },
      ],
      edges: [
        { from: 'gen', to: 'm' },
        { from: 'm', to: 'f' },
        { from: 'c', to: 'f' },
        { from: 'gen', to: 'c' },
      ],
    };
    expect(knownFields(graph, 'f')).toEqual(['user', 'item', 'amount', 'ts', 'region', 'key', 'count']);
  });

  it('cannot know inside or after a cycle', () => {
    const graph = {
      vertices: [
        gen,
        { id: 'a', type: 'filter', parallelism: 1 },
        { id: 'b', type: 'filter', parallelism: 1 },
        { id: 'c', type: 'filter', parallelism: 1 },
      ],
      edges: [
        { from: 'gen', to: 'a' },
        { from: 'a', to: 'b' },
        { from: 'b', to: 'a' },
        { from: 'b', to: 'c' },
      ],
    };
    expect(knownFields(graph, 'a')).toBeUndefined();
    expect(knownFields(graph, 'c')).toBeUndefined();
  });
});

describe('joins take a left and a right input', () => {
  const join = (sides: ('left' | 'right' | undefined)[]): GraphInput => ({
    vertices: [
      { id: 'a', type: 'generator', parallelism: 1 },
      { id: 'b', type: 'generator', parallelism: 1, settings: { seed: 2 } },
      { id: 'c', type: 'generator', parallelism: 1, settings: { seed: 3 } },
      { id: 'j', type: 'intervalJoin', parallelism: 1 },
      { id: 'out', type: 'log', parallelism: 1 },
    ],
    edges: [
      ...sides.map((side, i) => ({
        from: ['a', 'b', 'c'][i]!,
        to: 'j',
        partitioning: 'hash' as const,
        key: i ? 'item' : 'user',
        ...(side && { side }),
      })),
      { from: 'j', to: 'out', partitioning: 'forward' },
    ],
  });
  const issues = (g: GraphInput) => {
    const r = validateGraph(g);
    return r.ok ? [] : r.issues.map((i) => i.message);
  };

  it('accepts one left and one right input keyed by fields of their own', () => {
    expect(issues(join(['left', 'right']))).toEqual([]);
  });

  it.each([
    [['left'], /j joins two inputs: connect one edge as its left input and one as its right \(it has left\)/],
    [['left', 'left'], /it has left and left/],
    [['left', undefined], /it has left and an edge without a side/],
    [['left', 'right', 'right'], /it has left and right and right/],
  ] as const)('refuses %j', (sides, message) => {
    expect(issues(join([...sides])).join('; ')).toMatch(message);
  });

  it('refuses a side on the input of an operator that is no join', () => {
    const g = join(['left', 'right']);
    g.vertices.push({ id: 'w', type: 'count', parallelism: 1 });
    g.edges.push({ from: 'a', to: 'w', partitioning: 'hash', key: 'user', side: 'left' }, { from: 'w', to: 'out', partitioning: 'forward' });
    expect(issues(g)).toEqual(["a->w says it is the left input, but w is no join: only a join's inputs have a side"]);
  });

  it('the builder cannot draw a third input into a join', () => {
    const g = join(['left', 'right']);
    expect(connectionProblem(validateGraphOrThrow(g), 'c', 'j', 'hash')).toBe('j already has its two inputs (left and right)');
  });

  it('one edge per side: a side already connected refuses a second edge, the free one takes it', () => {
    const g = join(['left']);
    g.edges = g.edges.filter((e) => e.to === 'j');
    const graph = graphSchema.parse(g);
    expect(connectionProblem(graph, 'b', 'j', 'hash', 'left')).toBe("j's left input is already connected (from a)");
    expect(connectionProblem(graph, 'b', 'j', 'hash', 'right')).toBeUndefined();
  });
});

function validateGraphOrThrow(g: GraphInput) {
  const r = validateGraph(g);
  if (!r.ok) throw new Error(r.issues[0]!.message);
  return r.graph;
}
