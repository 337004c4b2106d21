import type { GraphInput } from './graph.ts';

/** The pipeline `npm run up` deploys: endless skewed events, counted per user, upserted into Postgres. */
export const demoPipeline: GraphInput = {
  vertices: [
    {
      id: 'events',
      type: 'generator',
      name: 'Events',
      parallelism: 1,
      // Event time at the wall clock's pace (2,000 events a second, 0.5 ms apart): opened from its template, which
      // starts it now, its watermarks show a real lag.
      settings: { seed: 7, rate: 2000, msPerEvent: 0.5, keys: 10_000, skew: 'zipf', splits: 16 },
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
