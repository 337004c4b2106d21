import { demoPipeline } from './demo.ts';
import type { GraphInput } from './graph.ts';
import { NEXMARK_QUERIES, nexmarkQuery, nexmarkQueryInfo } from './nexmarkQueries.ts';

/** A pipeline to start from: the builder opens its graph unsaved, named after it. */
export interface PipelineTemplate {
  /** Stable, URL-safe: `/pipelines/new?template=<id>`. */
  id: string;
  name: string;
  description: string;
  graph: GraphInput;
  /** A heading the menu lists it under (none: the first, unnamed group). */
  group?: string;
}

/** Clicks counted per user in tumbling one-minute windows of event time, one row per user and minute in Postgres. */
export const clicksPerUserPerMinute: GraphInput = {
  vertices: [
    {
      id: 'clicks',
      type: 'generator',
      name: 'Clicks',
      parallelism: 2,
      // Events up to 2 s late, and a watermark that waits as long for them: no window fires before its records came.
      settings: { seed: 11, rate: 1000, keys: 1000, splits: 4, outOfOrderness: '2s', watermarkDelay: '2s' },
      position: { x: 0, y: 0 },
    },
    {
      id: 'perMinute',
      type: 'window',
      name: 'Per user per minute',
      parallelism: 2,
      settings: { assigner: 'tumbling', size: '1m', aggregates: 'count' },
      position: { x: 300, y: 0 },
    },
    {
      id: 'results',
      type: 'postgres',
      name: 'clicks_per_user_minute',
      parallelism: 2,
      // One row per user and window: the window's start is part of the key.
      settings: { table: 'clicks_per_user_minute', keyField: 'key, windowStart', valueField: 'count' },
      position: { x: 600, y: 0 },
    },
  ],
  edges: [
    { from: 'clicks', to: 'perMinute', partitioning: 'hash', key: 'user' },
    { from: 'perMinute', to: 'results', partitioning: 'forward' },
  ],
};

/**
 * Clicks joined to the views of the same user within a second of event time either way (an interval join keyed by
 * `user` on both sides), one row per pair in Postgres.
 */
export const clicksJoinedToViews: GraphInput = {
  vertices: [
    {
      id: 'clicks',
      type: 'generator',
      name: 'Clicks',
      parallelism: 1,
      // Event time runs at the wall clock's pace on both sides (rate × msPerEvent = 1000), so neither holds the join's watermark back.
      settings: { seed: 21, rate: 200, msPerEvent: 5, keys: 1000, splits: 4 },
      position: { x: 0, y: -90 },
    },
    {
      id: 'views',
      type: 'generator',
      name: 'Views',
      parallelism: 1,
      settings: { seed: 22, rate: 1000, msPerEvent: 1, keys: 1000, splits: 4 },
      position: { x: 0, y: 90 },
    },
    {
      id: 'joined',
      type: 'intervalJoin',
      name: 'Click within 1 s of a view',
      parallelism: 2,
      settings: { lower: '-1s', upper: '1s' },
      position: { x: 320, y: 0 },
    },
    {
      id: 'results',
      type: 'postgres',
      name: 'clicks_joined_to_views',
      parallelism: 2,
      // One row per pair: the user and both events' times.
      settings: { table: 'clicks_joined_to_views', keyField: 'key, left.ts, right.ts' },
      position: { x: 640, y: 0 },
    },
  ],
  edges: [
    { from: 'clicks', to: 'joined', partitioning: 'hash', key: 'user', side: 'left' },
    { from: 'views', to: 'joined', partitioning: 'hash', key: 'user', side: 'right' },
    { from: 'joined', to: 'results', partitioning: 'forward' },
  ],
};

/** The templates "New from template" offers, in the order it lists them. */
export const pipelineTemplates: readonly PipelineTemplate[] = [
  {
    id: 'user-counts',
    name: 'Count per user',
    description: 'Endless skewed events counted per user, the running count upserted into Postgres (the demo pipeline).',
    graph: demoPipeline,
  },
  {
    id: 'clicks-per-user-minute',
    name: 'Clicks per user per minute',
    description: 'Out-of-order clicks counted per user in one-minute event-time windows; one row per user and minute in Postgres.',
    graph: clicksPerUserPerMinute,
  },
  {
    id: 'clicks-joined-to-views',
    name: 'Clicks joined to views',
    description: 'Each click paired with the views of its user within a second either way (an interval join); one row per pair in Postgres.',
    graph: clicksJoinedToViews,
  },
  ...NEXMARK_QUERIES.map((q) => ({
    id: `nexmark-${q}`,
    name: `Nexmark ${q}: ${nexmarkQueryInfo[q].title}`,
    description: nexmarkQueryInfo[q].description,
    group: 'Nexmark benchmark',
    graph: nexmarkQuery(q),
  })),
];

/**
 * The template of an id, if there is one, with its generators' (and Nexmark sources') event time starting at `now`: a job made from it
 * shows watermarks near the wall clock, with a real lag, instead of the generator's fixed 2026-01-01. The start is
 * a setting, so every replay of the job regenerates the same events.
 */
export function pipelineTemplate(id: string, now = Date.now()): PipelineTemplate | undefined {
  const t = pipelineTemplates.find((x) => x.id === id);
  if (!t) return undefined;
  const startAt = new Date(now).toISOString();
  const vertices = t.graph.vertices.map((v) => (v.type === 'generator' || v.type === 'nexmark' ? { ...v, settings: { ...v.settings, startAt } } : v));
  return { ...t, graph: { ...t.graph, vertices } };
}
