import { clicksJoinedToViews, type GraphInput } from '@keyflow/core';
import { describe, expect, it } from 'vitest';
import { fromGraph } from './builderGraph';
import { JOIN_NODE_WIDTH, layoutDoc } from './layout';

/** The template's graph without positions, its vertices in the given order of ids. */
const unplaced = (...order: string[]): GraphInput => ({
  ...clicksJoinedToViews,
  vertices: order.map((id) => {
    const { position: _, ...v } = clicksJoinedToViews.vertices.find((x) => x.id === id)!;
    return v;
  }),
});

describe('layout', () => {
  it.each([
    ['clicks', 'views', 'joined', 'results'],
    ['views', 'clicks', 'joined', 'results'],
    ['results', 'joined', 'views', 'clicks'],
  ])('puts a join’s left producer above its right one, whatever the order (%s, %s, …)', (...order) => {
    const { nodes } = layoutDoc(fromGraph(unplaced(...order)).doc);
    const at = (id: string) => nodes.find((n) => n.id === id)!.position;
    expect(at('clicks').x).toBe(at('views').x);
    expect(at('clicks').y).toBeLessThan(at('views').y);
    expect(at('joined').x).toBeGreaterThan(at('clicks').x);
    // The join's card is wider by its gutter: the sink keeps its distance from it.
    expect(at('results').x - at('joined').x).toBeGreaterThanOrEqual(JOIN_NODE_WIDTH + 90);
  });
});
