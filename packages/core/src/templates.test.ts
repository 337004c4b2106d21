import { describe, expect, it } from 'vitest';
import { demoPipeline } from './demo.ts';
import { knownFields, validateGraph } from './graphRules.ts';
import { generatorSettings, operatorSpec, ownClockVertices } from './operatorCatalog.ts';
import { nexmarkQuery } from './nexmarkQueries.ts';
import { buildChains, initialPlan } from './plan.ts';
import { clicksJoinedToViews, clicksPerUserPerMinute, pipelineTemplate, pipelineTemplates } from './templates.ts';

describe('pipeline templates', () => {
  it.each(pipelineTemplates.map((t) => [t.name, t] as const))('%s is a valid pipeline', (_name, template) => {
    const r = validateGraph(template.graph);
    expect(r.ok ? [] : r.issues).toEqual([]);
  });

  it('have distinct, URL-safe ids, and are found by them', () => {
    const ids = pipelineTemplates.map((t) => t.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[a-z0-9-]+$/);
    expect(pipelineTemplate('user-counts')?.graph.edges).toEqual(demoPipeline.edges);
    expect(pipelineTemplate('user-counts')?.graph.vertices.map((v) => v.id)).toEqual(demoPipeline.vertices.map((v) => v.id));
    expect(pipelineTemplate('nope')).toBeUndefined();
  });

  it("start their generators' event time when they are opened, so watermarks stand near the wall clock; the rest is as listed", () => {
    const opened = Date.UTC(2026, 10, 29, 10, 0, 0);
    const t = pipelineTemplate('clicks-per-user-minute', opened)!;
    const clicks = t.graph.vertices.find((v) => v.id === 'clicks')!;
    expect(clicks.settings).toMatchObject({ startAt: '2026-11-29T10:00:00.000Z', outOfOrderness: '2s' });
    expect(generatorSettings.parse(clicks.settings).startAt).toBe('2026-11-29T10:00:00.000Z');
    expect(validateGraph(t.graph).ok).toBe(true);
    // The listed template itself is left as it is.
    expect(clicksPerUserPerMinute.vertices[0]!.settings).not.toHaveProperty('startAt');
    expect(generatorSettings.safeParse({ startAt: 'yesterday' }).success).toBe(false);
  });

  it.each(pipelineTemplates.map((t) => [t.name, t.id] as const))(
    '%s, once opened, runs its event time at the wall clock: its watermarks show a real lag, not "own clock"',
    (_name, id) => {
      expect([...ownClockVertices(pipelineTemplate(id)!.graph)]).toEqual([]);
    },
  );

  it('clicks per user per minute: one-minute tumbling windows of out-of-order clicks, a row per user and minute', () => {
    const r = validateGraph(clicksPerUserPerMinute);
    if (!r.ok) throw new Error('the template is invalid');
    // What each operator reads its settings as (durations in ms), as whoever runs it parses them.
    const settings = (id: string) => {
      const v = r.graph.vertices.find((x) => x.id === id)!;
      return operatorSpec(v.type)!.settings.parse(v.settings);
    };
    expect(settings('clicks')).toMatchObject({ rate: 1000, keys: 1000, splits: 4, outOfOrderness: 2000, watermarkDelay: 2000 });
    expect(settings('perMinute')).toMatchObject({ assigner: 'tumbling', size: 60_000, time: 'event', aggregates: 'count' });
    expect(settings('results')).toMatchObject({ table: 'clicks_per_user_minute', keyField: 'key, windowStart', valueField: 'count' });
    // The hash key is a field the generator emits; the window's output holds both parts of the sink's key.
    expect(knownFields(r.graph, 'clicks')).toContain('user');
    expect(knownFields(r.graph, 'perMinute')).toEqual(expect.arrayContaining(['key', 'windowStart', 'windowEnd', 'count']));
    // The sink runs chained to the window, so a rescale of the window takes it along.
    const chains = buildChains(r.graph, initialPlan(r.graph));
    expect(chains.map((c) => c.vertices.map((v) => v.id))).toEqual([['clicks'], ['perMinute', 'results']]);
  });

  it('clicks joined to views: an interval join of two seeded generators keyed by user on both sides, a row per pair', () => {
    const r = validateGraph(clicksJoinedToViews);
    if (!r.ok) throw new Error('the template is invalid');
    const vertex = (id: string) => r.graph.vertices.find((x) => x.id === id)!;
    const settings = (id: string) => operatorSpec(vertex(id).type)!.settings.parse(vertex(id).settings);
    const source = (id: string) => generatorSettings.parse(vertex(id).settings);
    expect(source('clicks').seed).not.toBe(source('views').seed);
    // Both sources' event time runs at the same pace, so the join's watermark (the slower side's) keeps up with both.
    const pace = (id: string) => source(id).rate * source(id).msPerEvent;
    expect(pace('clicks')).toBe(pace('views'));
    expect(vertex('joined').type).toBe('intervalJoin');
    expect(settings('joined')).toEqual({ lower: -1000, upper: 1000 });
    expect(r.graph.edges.filter((e) => e.to === 'joined').map((e) => [e.from, e.side, e.partitioning, e.key])).toEqual([
      ['clicks', 'left', 'hash', 'user'],
      ['views', 'right', 'hash', 'user'],
    ]);
    expect(settings('results')).toMatchObject({ table: 'clicks_joined_to_views', keyField: 'key, left.ts, right.ts' });
    // The join's records hold the sink's key: the user and both sides' records (whose ts the key reaches into).
    expect(knownFields(r.graph, 'joined')).toEqual(['key', 'left', 'right']);
    expect(knownFields(r.graph, 'views')).toContain('ts');
    const chains = buildChains(r.graph, initialPlan(r.graph));
    expect(chains.map((c) => c.vertices.map((v) => v.id))).toEqual([['clicks'], ['views'], ['joined', 'results']]);
  });

  // Flink's planner projects each input before its exchange; the templates do it by hand, with a map in the source's
  // chain. Records cross a channel encoded, so every field left on them is paid for in every hop.
  it.each([
    ['q4', { auctionFields: ['id', 'category', 'dateTime', 'expires'], bidFields: ['auction', 'price', 'dateTime'] }],
    ['q5', { auctions: ['auction'] }],
    ['q8', { personFields: ['id', 'name'], sellers: ['seller'] }],
    ['q11', { bidders: ['bidder'] }],
    ['q12', { bidders: ['bidder'] }],
  ] as const)('Nexmark %s: only the fields the query reads cross its first shuffle', (query, expected) => {
    const graph = nexmarkQuery(query);
    const source = graph.vertices.find((v) => v.type === 'nexmark')!.id;
    // The vertices that feed a hash edge straight from the source's chain (forward edges only up to them).
    const chained = new Set([source]);
    for (let grew = true; grew;) {
      grew = false;
      for (const e of graph.edges) if (chained.has(e.from) && !chained.has(e.to) && e.partitioning === 'forward') grew = !!chained.add(e.to);
    }
    const shuffled = graph.edges.filter((e) => e.partitioning === 'hash' && chained.has(e.from)).map((e) => e.from);
    expect(Object.fromEntries(shuffled.map((id) => [id, knownFields(graph, id)]))).toEqual(expected);
  });
});
