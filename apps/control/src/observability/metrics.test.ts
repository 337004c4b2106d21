import type { WorkerEvent } from '@keyflow/runtime';
import { describe, expect, it } from 'vitest';
import { MetricsAggregator } from './metrics.ts';

type MetricsEvent = Extract<WorkerEvent, { type: 'metrics' }>;

/** A subtask's report: its busy share, and its worker with the cores that worker used. */
const report = (jobId: string, vertexId: string, index: number, busy: number, worker?: { id: string; cpu: number }): MetricsEvent =>
  ({
    type: 'metrics',
    jobId,
    attempt: 1,
    vertexId,
    index,
    windowMs: 1000,
    backpressure: 0,
    busy,
    ...(worker && { worker }),
    vertices: { [vertexId]: { recordsIn: 0, recordsOut: 0, deadLetters: 0 } },
  }) as MetricsEvent;

describe('what each chain of a job costs, for placement', () => {
  it('gives a subtask alone on a worker that worker’s CPU, and shares a worker’s CPU by busy share', () => {
    const m = new MetricsAggregator();
    // The recovery benchmark's layout: the source alone on one worker, a count on each of two others.
    m.record(report('j', 'events', 0, 1, { id: 'w1', cpu: 0.96 }));
    m.record(report('j', 'count', 0, 0.9, { id: 'w2', cpu: 0.5 }));
    m.record(report('j', 'count', 1, 0.8, { id: 'w3', cpu: 0.4 }));
    const costs = m.costs('j', ['events', 'count'])!;
    expect(costs.get('events')).toBeCloseTo(0.96);
    expect(costs.get('count')).toBeCloseTo(0.9);

    // One worker running a source (busy 3/4 of the time) and a map of another job (1/4): 1.2 cores shared 3 : 1.
    const n = new MetricsAggregator();
    n.record(report('j', 'events', 0, 0.75, { id: 'w1', cpu: 1.2 }));
    n.record(report('other', 'map', 0, 0.25, { id: 'w1', cpu: 1.2 }));
    expect(n.costs('j', ['events'])!.get('events')).toBeCloseTo(0.9);
    expect(n.costs('other', ['map'])!.get('map')).toBeCloseTo(0.3);
  });

  it('shares evenly when no subtask on the worker was busy', () => {
    const m = new MetricsAggregator();
    m.record(report('j', 'a', 0, 0, { id: 'w1', cpu: 0.2 }));
    m.record(report('j', 'b', 0, 0, { id: 'w1', cpu: 0.2 }));
    expect(m.costs('j', ['a', 'b'])).toEqual(
      new Map([
        ['a', 0.1],
        ['b', 0.1],
      ]),
    );
  });

  it('has no estimate when a chain has no report with its worker’s CPU, or only old ones', () => {
    const m = new MetricsAggregator();
    expect(m.costs('j', ['events'])).toBeUndefined();
    m.record(report('j', 'events', 0, 1, { id: 'w1', cpu: 1 }));
    m.record(report('j', 'count', 0, 1));
    expect(m.costs('j', ['events', 'count'])).toBeUndefined();
    expect(m.costs('j', ['events'])?.get('events')).toBe(1);
    expect(m.costs('j', ['events'], Date.now() + 60_000)).toBeUndefined();
  });

  it('averages the reports of the few seconds before the failure, and nothing after it', () => {
    const m = new MetricsAggregator();
    // Before the failure the source used most of a core; after it, blocked on the lost count's full channel, nothing.
    m.record(report('j', 'events', 0, 1, { id: 'w1', cpu: 0.8 }));
    m.record(report('j', 'events', 0, 1, { id: 'w1', cpu: 1.0 }));
    const failedAt = Date.now();
    while (Date.now() === failedAt);
    m.record(report('j', 'events', 0, 0.02, { id: 'w1', cpu: 0.03 }));
    expect(m.costs('j', ['events'], failedAt)!.get('events')).toBeCloseTo(0.9);
    expect(m.costs('j', ['events'])!.get('events')).toBeLessThan(0.9);
    // A new attempt's reports start afresh.
    m.resetRates('j');
    expect(m.costs('j', ['events'], failedAt)).toBeUndefined();
  });
});
