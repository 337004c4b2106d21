import type { GraphInput } from './graph.ts';

/** The pipeline `npm run up` deploys: endless skewed events, counted per user, upserted into Postgres. */
export const demoPipeline: GraphInput = {
  vertices: [
    {
      id: 'events',
      type: 'generator',
      name: 'Events',
      parallelism: 1,
      settings: { seed: 7, rate: 2000, keys: 10_000, skew: 'zipf', splits: 16 },
      position: { x: 0, y: 0 },
    },
    { id: 'count', type: 'count', name: 'Count per user', parallelism: 2, position: { x: 260, y: 0 } },
    { id: 'results', type: 'postgres', name: 'user_counts', parallelism: 2, settings: { table: 'demo_user_counts' }, position: { x: 520, y: -60 } },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'results', partitioning: 'forward' },
  ],
};
