import { EventGenerator, type GraphInput } from '@keyflow/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, tableCounts, waitForCheckpoint, waitForFinished, type Stack } from './harness.ts';
import { converged, requestRescale } from './rescaleDriver.ts';

// Two small deterministic streams of the same 50 users, up to 1 s out of order, 50 s of event time each.
const stream = (seed: number) =>
  ({ seed, rate: 500, keys: 50, skew: 'uniform', total: 5_000, splits: 4, msPerEvent: 10, outOfOrderness: '1s', watermarkDelay: '1s' }) as const;
const clicks = stream(1);
const views = stream(2);
const PAIR_KEY = 'key, left.ts, left.item, right.ts, right.item';

const pipeline = (prefix: string): GraphInput => ({
  vertices: [
    { id: 'clicks', type: 'generator', parallelism: 2, settings: clicks },
    { id: 'views', type: 'generator', parallelism: 2, settings: views },
    { id: 'wjoin', type: 'windowJoin', parallelism: 2, settings: { size: '5s' } },
    {
      id: 'wsink',
      type: 'postgres',
      parallelism: 2,
      settings: { table: `${prefix}_window`, keyField: `${PAIR_KEY}, windowStart`, valueField: 'key' },
    },
    { id: 'ijoin', type: 'intervalJoin', parallelism: 2, settings: { lower: '-1s', upper: '500ms' } },
    { id: 'isink', type: 'postgres', parallelism: 2, settings: { table: `${prefix}_interval`, keyField: PAIR_KEY, valueField: 'key' } },
  ],
  edges: [
    { from: 'clicks', to: 'wjoin', partitioning: 'hash', key: 'user', side: 'left' },
    { from: 'views', to: 'wjoin', partitioning: 'hash', key: 'user', side: 'right' },
    { from: 'wjoin', to: 'wsink', partitioning: 'forward' },
    { from: 'clicks', to: 'ijoin', partitioning: 'hash', key: 'user', side: 'left' },
    { from: 'views', to: 'ijoin', partitioning: 'hash', key: 'user', side: 'right' },
    { from: 'ijoin', to: 'isink', partitioning: 'forward' },
  ],
});

type Event = { user: string; item: string; ts: number };
const events = (settings: ReturnType<typeof stream>): Event[] => {
  const gen = new EventGenerator({ ...settings, zipfExponent: 1, outOfOrderness: 1000 });
  return Array.from({ length: settings.total }, (_, i) => gen.eventAt(i));
};
const pairKey = (l: Event, r: Event) => `${l.user}|${l.ts}|${l.item}|${r.ts}|${r.item}`;

/** Every pair the joins must emit, computed by brute force over both streams, without the engine. */
function expectedPairs() {
  const left = events(clicks);
  const right = events(views);
  const window = new Set<string>();
  const interval = new Set<string>();
  for (const l of left)
    for (const r of right) {
      if (l.user !== r.user) continue;
      const start = Math.floor(l.ts / 5000) * 5000;
      if (Math.floor(r.ts / 5000) * 5000 === start) window.add(`${pairKey(l, r)}|${start}`);
      if (r.ts >= l.ts - 1000 && r.ts <= l.ts + 500) interval.add(pairKey(l, r));
    }
  return { window, interval };
}

describe('window join and interval join over two out-of-order streams', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ workers: 2, slots: 8 });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('emit exactly the pairs a brute-force join finds, through live rescales of both joins', async () => {
    const p = await stack.client.createPipeline({ name: `joins-${stack.prefix}`, graph: pipeline('joins') });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 500 });
    await waitForCheckpoint(stack, job.id);
    await requestRescale(stack, job.id, 'wjoin', 3);
    await converged(stack, job.id, 'wjoin', 3);
    await requestRescale(stack, job.id, 'ijoin', 1);
    await converged(stack, job.id, 'ijoin', 1);
    const done = await waitForFinished(stack, job.id, 120_000);
    // Watermarks trail by the streams' disorder: nothing is late.
    expect(done.metrics?.vertices.wjoin?.lateRecords ?? 0).toBe(0);
    expect(done.metrics?.vertices.ijoin?.lateRecords ?? 0).toBe(0);

    const expected = expectedPairs();
    for (const [table, want] of [
      ['joins_window', expected.window],
      ['joins_interval', expected.interval],
    ] as const) {
      const got = new Set((await tableCounts(table)).keys());
      expect(want.size).toBeGreaterThan(1000);
      const missing = [...want].filter((k) => !got.has(k));
      const extra = [...got].filter((k) => !want.has(k));
      expect({ table, missing: missing.slice(0, 5), extra: extra.slice(0, 5) }).toEqual({ table, missing: [], extra: [] });
    }
  });

  it('a join needs a left and a right input: the API says so', async () => {
    const graph = pipeline('bad');
    graph.edges[1] = { ...graph.edges[1]!, side: 'left' };
    await expect(stack.client.createPipeline({ name: `bad-join-${stack.prefix}`, graph })).rejects.toThrow(
      /wjoin joins two inputs: connect one edge as its left input and one as its right/,
    );
  });
});
