import { clearUserOperators, clicksJoinedToViews, countSettings, registerOperatorSpec, validateGraph, type GraphInput } from '@keyflow/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectionEnds,
  connectionOf,
  connectionRefusal,
  defaultEdge,
  deliveryOf,
  edgeLabel,
  emptyDoc,
  fromGraph,
  friendlyMessage,
  indexIssues,
  newOperatorNode,
  newVertexId,
  nodeTypeOf,
  toFlowEdge,
  toGraph,
  type BuilderDoc,
} from './builderGraph';

/**
 * A canvas with one operator of each given type, in a row, and the given edges (partitioned as the canvas would;
 * into a join, at the side given, else the free one).
 */
function canvas(types: string[], edges: ([string, string] | [string, string, 'left' | 'right'])[] = []): BuilderDoc {
  let doc = emptyDoc;
  for (const [i, type] of types.entries()) doc = { ...doc, nodes: [...doc.nodes, newOperatorNode(type, { x: i * 260, y: 0 }, doc)] };
  for (const [from, to, side] of edges) doc = { ...doc, edges: [...doc.edges, toFlowEdge(defaultEdge(toGraph(doc), from, to, side))] };
  return doc;
}

describe('connections the canvas refuses, with core’s reason', () => {
  const doc = canvas(
    ['generator', 'count', 'map', 'postgres'],
    [
      ['generator', 'count'],
      ['count', 'map'],
    ],
  );

  it.each([
    ['count', 'count', 'an operator cannot feed itself'],
    ['generator', 'count', 'generator and count are already connected'],
    ['map', 'count', 'connecting map to count would make a cycle'],
    ['postgres', 'map', 'postgres is a sink: it has no output'],
    ['map', 'generator', 'generator is a source: it takes no input'],
    [null, 'map', 'connect an output to an input'],
  ])('%s → %s: %s', (from, to, message) => {
    expect(connectionRefusal(doc, { from, to })).toBe(message);
  });

  it('accepts a valid one', () => {
    expect(connectionRefusal(doc, { from: 'map', to: 'postgres' })).toBeUndefined();
  });
});

describe('new edges are partitioned as the operators need', () => {
  it('into a keyed operator: hash by the source’s user field, or by the key of a keyed result', () => {
    const doc = canvas(['generator', 'map', 'count', 'sum']);
    const graph = toGraph(doc);
    expect(defaultEdge(graph, 'generator', 'count')).toEqual({ from: 'generator', to: 'count', partitioning: 'hash', key: 'user' });
    const chained = toGraph(canvas(['generator', 'map', 'count', 'sum'], [['generator', 'map']]));
    expect(defaultEdge(chained, 'map', 'count').key).toBe('user');
    expect(defaultEdge(graph, 'count', 'sum').key).toBe('key');
  });

  it('into a keyed operator whose input has neither field: no invented key, the edge asks for one', () => {
    const doc = canvas(['generator', 'map', 'count'], [['generator', 'map']]);
    doc.nodes[1]!.data.vertex.settings = { steps: [{ op: 'pick', fields: ['item', 'amount'] }] };
    expect(defaultEdge(toGraph(doc), 'map', 'count')).toEqual({ from: 'map', to: 'count', partitioning: 'hash' });
    const issues = indexIssues({ ...doc, edges: [...doc.edges, toFlowEdge(defaultEdge(toGraph(doc), 'map', 'count'))] });
    expect(issues.edges.get('map->count')?.map((i) => i.message)).toContain('hash edge map->count needs a key field (keyBy)');
  });

  it('otherwise forward when the parallelism matches, rebalance when not', () => {
    const doc = canvas(['count', 'log']);
    expect(defaultEdge(toGraph(doc), 'count', 'log').partitioning).toBe('forward');
    doc.nodes[0]!.data.vertex.parallelism = 2;
    expect(defaultEdge(toGraph(doc), 'count', 'log').partitioning).toBe('rebalance');
  });
});

describe('validation messages land on the operator, edge and field at fault', () => {
  it('a postgres sink without a table: its node and its table field say “required”', () => {
    const issues = indexIssues(canvas(['generator', 'postgres'], [['generator', 'postgres']]));
    expect(issues.vertices.get('postgres')?.map((i) => i.message)).toEqual(['required']);
    expect(issues.fields.get('postgres')?.get('settings.table')).toBe('required');
    expect(issues.vertices.has('generator')).toBe(false);
  });

  it('parallelism past the source’s splits names the limit', () => {
    const doc = canvas(['generator', 'log'], [['generator', 'log']]);
    doc.nodes[0]!.data.vertex = { ...doc.nodes[0]!.data.vertex, parallelism: 20, settings: { splits: 8 } };
    expect(indexIssues(doc).fields.get('generator')?.get('parallelism')).toBe(
      "parallelism must be between 1 and 8 (the operator's maxParallelism, its splits)",
    );
  });

  it('a forward edge between different parallelisms is marked on the edge', () => {
    const doc = canvas(['generator', 'log'], [['generator', 'log']]);
    doc.nodes[1]!.data.vertex.parallelism = 2;
    expect(indexIssues(doc).edges.get('generator->log')?.[0]?.message).toBe(
      'forward edge generator->log needs equal parallelism (generator has 1, log has 2)',
    );
  });

  it('a keyed operator fed without a key, and operators left unconnected, are marked', () => {
    const doc = canvas(['generator', 'count', 'log'], [['count', 'log']]);
    const issues = indexIssues(doc);
    expect(issues.vertices.get('count')?.map((i) => i.message)).toContain('count has no input');
    expect(issues.all.length).toBeGreaterThan(0);
    const fixed = canvas(
      ['generator', 'count', 'log'],
      [
        ['generator', 'count'],
        ['count', 'log'],
      ],
    );
    expect(indexIssues(fixed).all).toEqual([]);
  });

  it('typed text that is no valid value comes first on its field, and is listed apart', () => {
    const doc = canvas(['generator', 'log'], [['generator', 'log']]);
    doc.nodes[1]!.data.drafts = { parallelism: '-2' };
    const issues = indexIssues(doc);
    expect(issues.fields.get('log')?.get('parallelism')).toBe('a whole number from 1 to 32768');
    expect(issues.unparsed).toEqual([{ path: ['vertices', 1, 'parallelism'], vertexId: 'log', message: 'a whole number from 1 to 32768' }]);
    expect(issues.all).toEqual(issues.unparsed);
  });

  it('zod’s wording for a missing value reads as “required”', () => {
    expect(friendlyMessage('Invalid input: expected string, received undefined')).toBe('required');
    expect(friendlyMessage('Invalid input: expected number, received string')).toBe('expected number, received string');
  });
});

describe('the canvas and the stored graph', () => {
  it('round-trip, positions and partitioning included, and the result is what the server validates', () => {
    const doc = canvas(
      ['generator', 'count', 'postgres'],
      [
        ['generator', 'count'],
        ['count', 'postgres'],
      ],
    );
    doc.nodes[2]!.data.vertex.settings = { table: 'counts' };
    const graph = toGraph(doc);
    expect(graph.edges).toEqual([
      { from: 'generator', to: 'count', partitioning: 'hash', key: 'user' },
      { from: 'count', to: 'postgres', partitioning: 'forward' },
    ]);
    expect(validateGraph(graph).ok).toBe(true);
    const back = fromGraph(graph);
    expect(back.placed).toBe(true);
    expect(toGraph(back.doc)).toEqual(graph);
  });

  it('a hash edge without its key yet is labelled hash(?)', () => {
    expect(edgeLabel({ partitioning: 'hash' })).toBe('hash(?)');
    expect(edgeLabel({ partitioning: 'hash', key: '' })).toBe('hash(?)');
    expect(edgeLabel({ partitioning: 'hash', key: 'user' })).toBe('hash(user)');
  });

  it('ids are the type, then numbered', () => {
    expect(newVertexId('count', [])).toBe('count');
    expect(newVertexId('count', ['count', 'count2'])).toBe('count3');
  });

  it('a graph without positions asks for a layout; garbage gives an empty canvas', () => {
    expect(fromGraph({ vertices: [{ id: 'a', type: 'generator', parallelism: 1 }], edges: [] }).placed).toBe(false);
    expect(fromGraph('nonsense').doc.nodes).toEqual([]);
  });
});

describe('a sink’s delivery guarantee on its node', () => {
  it.each([
    [{ type: 'postgres', settings: { table: 'counts' } }, 'exactly-once'],
    [{ type: 'postgres', settings: { table: 'counts', delivery: 'at-least-once' } }, 'at-least-once'],
    // Still being filled in: the choice shows before the table is set.
    [{ type: 'postgres', settings: { delivery: 'at-least-once' } }, 'at-least-once'],
    [{ type: 'postgres', settings: {} }, 'exactly-once'],
    [{ type: 'log', settings: {} }, 'at-least-once'],
    [{ type: 'count', settings: {} }, undefined],
  ])('%o: %s', (vertex, want) => {
    expect(deliveryOf(vertex)).toBe(want);
  });
});

describe('joins: two inputs, each on the handle of its side', () => {
  /** Two generators into an interval join (each at the side given), the join into a log. */
  const joinCanvas = (...sides: ('left' | 'right')[]) => {
    const doc = canvas(['generator', 'generator', 'generator', 'intervalJoin', 'log'], [['intervalJoin', 'log']]);
    const edges = sides.map((side, i) => toFlowEdge(defaultEdge(toGraph(doc), doc.nodes[i]!.id, 'intervalJoin', side)));
    return { ...doc, edges: [...edges, ...doc.edges] };
  };

  it('a join is a node of its own type, with two handles', () => {
    expect(nodeTypeOf('intervalJoin')).toBe('join');
    expect(nodeTypeOf('windowJoin')).toBe('join');
    expect(nodeTypeOf('count')).toBe('keyed');
    expect(canvas(['windowJoin']).nodes[0]!.type).toBe('join');
  });

  it('an edge drawn to a handle feeds its side: hash by the suggested key, the side in its label, at the handle', () => {
    const doc = joinCanvas('right');
    const edge = doc.edges[0]!;
    expect(edge).toMatchObject({ source: 'generator', target: 'intervalJoin', targetHandle: 'right', label: 'right · hash(user)' });
    expect(edge.data).toEqual({ partitioning: 'hash', key: 'user', side: 'right' });
    // Drawn without a handle (as a test or a script would), it takes the side still free.
    expect(defaultEdge(toGraph(doc), 'generator2', 'intervalJoin')).toEqual({
      from: 'generator2',
      to: 'intervalJoin',
      partitioning: 'hash',
      key: 'user',
      side: 'left',
    });
    expect(edgeLabel({ partitioning: 'hash', side: 'left' })).toBe('left · hash(?)');
    expect(edgeLabel({ partitioning: 'hash', key: 'user' })).toBe('hash(user)');
  });

  it('round-trips with their sides, each edge on the handle of its side', () => {
    const loaded = fromGraph(clicksJoinedToViews).doc;
    const into = loaded.edges.filter((e) => e.target === 'joined');
    expect(into.map((e) => [e.source, e.targetHandle, e.label])).toEqual([
      ['clicks', 'left', 'left · hash(user)'],
      ['views', 'right', 'right · hash(user)'],
    ]);
    expect(loaded.nodes.find((n) => n.id === 'joined')!.type).toBe('join');
    const graph = toGraph(loaded);
    expect(graph.edges).toEqual(clicksJoinedToViews.edges);
    expect(validateGraph(graph).ok).toBe(true);
    expect(toGraph(fromGraph(graph).doc)).toEqual(graph);
  });

  it('refuses a second edge on a connected handle, and a third input, with core’s reason', () => {
    const one = joinCanvas('left');
    const from = 'generator2';
    const to = 'intervalJoin';
    expect(connectionRefusal(one, { from, to, side: 'left' })).toBe("intervalJoin's left input is already connected (from generator)");
    expect(connectionRefusal(one, { from, to, side: 'right' })).toBeUndefined();
    const both = joinCanvas('left', 'right');
    for (const side of ['left', 'right'] as const)
      expect(connectionRefusal(both, { from: 'generator3', to, side })).toBe('intervalJoin already has its two inputs (left and right)');
  });

  it('a missing side is the join node’s issue, gone once both are connected', () => {
    expect(
      indexIssues(joinCanvas('left'))
        .vertices.get('intervalJoin')
        ?.map((i) => i.message),
    ).toEqual(['intervalJoin joins two inputs: connect one edge as its left input and one as its right (it has left)']);
    expect(indexIssues(joinCanvas('left', 'right')).all).toEqual([]);
  });

  it('a connection’s ends: output first and the join handle’s side, whichever end it was drawn from', () => {
    const out = { type: 'source', id: null };
    const left = { type: 'target', id: 'left' };
    expect(connectionEnds({ fromNode: { id: 'a' }, toNode: { id: 'j' }, fromHandle: out, toHandle: left })).toEqual({
      from: 'a',
      to: 'j',
      side: 'left',
    });
    expect(connectionEnds({ fromNode: { id: 'j' }, toNode: { id: 'a' }, fromHandle: left, toHandle: out })).toEqual({
      from: 'a',
      to: 'j',
      side: 'left',
    });
    expect(connectionEnds({ fromNode: { id: 'a' }, toNode: { id: 'c' }, fromHandle: out, toHandle: { id: null } }).side).toBeUndefined();
  });
});

describe('side outputs: one handle each, the edge drawn from one carries it', () => {
  beforeAll(() =>
    registerOperatorSpec({
      type: 'dedupeSide',
      kind: 'keyed',
      label: 'Dedupe',
      description: 'repeats to the side',
      version: 'dedupeSide@0123456789ab',
      outputs: ['duplicates'],
      settings: countSettings,
      outputFields: (_settings, input) => input && [...input],
    }),
  );
  afterAll(() => clearUserOperators());

  const graph: GraphInput = {
    vertices: [
      { id: 'events', type: 'generator', parallelism: 1 },
      { id: 'dedupe', type: 'dedupeSide', parallelism: 1 },
      { id: 'firsts', type: 'log', parallelism: 1 },
      { id: 'dupCount', type: 'count', parallelism: 1 },
      { id: 'dups', type: 'log', parallelism: 1 },
    ],
    edges: [
      { from: 'events', to: 'dedupe', partitioning: 'hash', key: 'user' },
      { from: 'dedupe', to: 'firsts', partitioning: 'forward' },
      { from: 'dedupe', to: 'dupCount', partitioning: 'hash', key: 'user', output: 'duplicates' },
      { from: 'dupCount', to: 'dups', partitioning: 'forward' },
    ],
  };

  it('an edge from a side output starts at its handle, names it in its label, and saves it as the edge’s output', () => {
    const loaded = fromGraph(graph).doc;
    const side = loaded.edges.find((e) => e.target === 'dupCount')!;
    expect(side).toMatchObject({ source: 'dedupe', sourceHandle: 'duplicates', label: 'duplicates · hash(user)' });
    expect(side.data).toEqual({ partitioning: 'hash', key: 'user', output: 'duplicates' });
    expect(loaded.edges.find((e) => e.target === 'firsts')).not.toHaveProperty('sourceHandle');
    expect(toGraph(loaded).edges).toEqual(graph.edges);
    expect(indexIssues(loaded).all).toEqual([]);
  });

  it('a new edge from a side output is keyed by nothing it cannot know of: its records are the operator’s business', () => {
    const doc = fromGraph({ ...graph, edges: graph.edges.slice(0, 1) }).doc;
    expect(defaultEdge(toGraph(doc), 'dedupe', 'dupCount', undefined, 'duplicates')).toEqual({
      from: 'dedupe',
      to: 'dupCount',
      partitioning: 'hash',
      output: 'duplicates',
    });
    // The main output passes its input's fields on.
    expect(defaultEdge(toGraph(doc), 'dedupe', 'dupCount').key).toBe('user');
    expect(connectionRefusal(doc, { from: 'dedupe', to: 'dupCount', output: 'duplicates' })).toBeUndefined();
  });

  it('a connection’s output is the handle at its output end, whichever end it was drawn from', () => {
    const duplicates = { type: 'source', id: 'duplicates' };
    const input = { type: 'target', id: null };
    expect(connectionEnds({ fromNode: { id: 'd' }, toNode: { id: 'c' }, fromHandle: duplicates, toHandle: input })).toEqual({
      from: 'd',
      to: 'c',
      output: 'duplicates',
    });
    expect(connectionEnds({ fromNode: { id: 'c' }, toNode: { id: 'd' }, fromHandle: input, toHandle: duplicates })).toEqual({
      from: 'd',
      to: 'c',
      output: 'duplicates',
    });
    expect(connectionOf({ source: 'd', target: 'c', sourceHandle: 'duplicates', targetHandle: null })).toEqual({
      from: 'd',
      to: 'c',
      output: 'duplicates',
    });
    expect(connectionOf({ source: 'd', target: 'c', sourceHandle: null, targetHandle: null }).output).toBeUndefined();
  });

  it('an output the operator does not have is the edge’s issue', () => {
    const wrong = { ...graph, edges: graph.edges.map((e) => (e.output ? { ...e, output: 'late' } : e)) };
    expect(
      indexIssues(fromGraph(wrong).doc)
        .edges.get('dedupe->dupCount')
        ?.map((i) => i.message),
    ).toEqual(["dedupe has no output 'late' (its side outputs: duplicates)"]);
  });
});
