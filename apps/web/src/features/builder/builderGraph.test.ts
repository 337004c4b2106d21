import { validateGraph } from '@keyflow/core';
import { describe, expect, it } from 'vitest';
import {
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
  toFlowEdge,
  toGraph,
  type BuilderDoc,
} from './builderGraph';

/** A canvas with one operator of each given type, in a row, and the given edges (partitioned as the canvas would). */
function canvas(types: string[], edges: [string, string][] = []): BuilderDoc {
  let doc = emptyDoc;
  for (const [i, type] of types.entries()) doc = { ...doc, nodes: [...doc.nodes, newOperatorNode(type, { x: i * 260, y: 0 }, doc)] };
  for (const [from, to] of edges) doc = { ...doc, edges: [...doc.edges, toFlowEdge(defaultEdge(toGraph(doc), from, to))] };
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
    expect(connectionRefusal(doc, from, to)).toBe(message);
  });

  it('accepts a valid one', () => {
    expect(connectionRefusal(doc, 'map', 'postgres')).toBeUndefined();
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
