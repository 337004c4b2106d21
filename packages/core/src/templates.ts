import { demoPipeline } from './demo.ts';
import type { GraphInput } from './graph.ts';

/** A pipeline to start from: the builder opens its graph unsaved, named after it. */
export interface PipelineTemplate {
  /** Stable, URL-safe: `/pipelines/new?template=<id>`. */
  id: string;
  name: string;
  description: string;
  graph: GraphInput;
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
];

/** The template of an id, if there is one. */
export function pipelineTemplate(id: string): PipelineTemplate | undefined {
  return pipelineTemplates.find((t) => t.id === id);
}
