import { describe, expect, it } from 'vitest';
import { demoPipeline } from './demo.ts';
import { knownFields, validateGraph } from './graphRules.ts';
import { operatorSpec } from './operatorCatalog.ts';
import { buildChains, initialPlan } from './plan.ts';
import { clicksPerUserPerMinute, pipelineTemplate, pipelineTemplates } from './templates.ts';

describe('pipeline templates', () => {
  it.each(pipelineTemplates.map((t) => [t.name, t] as const))('%s is a valid pipeline', (_name, template) => {
    const r = validateGraph(template.graph);
    expect(r.ok ? [] : r.issues).toEqual([]);
  });

  it('have distinct, URL-safe ids, and are found by them', () => {
    const ids = pipelineTemplates.map((t) => t.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[a-z0-9-]+$/);
    expect(pipelineTemplate('user-counts')?.graph).toBe(demoPipeline);
    expect(pipelineTemplate('nope')).toBeUndefined();
  });

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
});
