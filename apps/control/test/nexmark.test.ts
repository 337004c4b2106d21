import { nexmarkQuery, type NexmarkQuery } from '@keyflow/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killWorkerRunning, startStack, waitFor, waitForCheckpoint, waitForFinished, waitForRecovered, waitForState, type Stack } from './harness.ts';
import {
  bidsPerBidder,
  expectedQ1,
  expectedQ2,
  expectedQ3,
  expectedQ4,
  expectedQ5,
  expectedQ7,
  expectedQ8,
  expectedQ11,
  nexmarkEvents,
  tableRows,
  type BoundedNexmark,
} from './nexmarkResults.ts';
import { converged, expectProgress, requestRescale } from './rescaleDriver.ts';

// The Nexmark templates' pipelines on real workers, Redis and Postgres: each query's results on a small bounded run
// equal an independent computation over the generator's events; q5 and q8 stay exact across a kill -9 and live
// rescales of their windows.

// 60,000 events at 1,000 per second of event time: a minute of it, six 10 s windows, 26 sliding ones.
const BOUNDED: BoundedNexmark = { seed: 5, total: 60_000, splits: 8, eventsPerSecond: 1000 };

describe('Nexmark queries', () => {
  let stack: Stack;
  const events = nexmarkEvents(BOUNDED);
  beforeAll(async () => {
    stack = await startStack({ workers: 3, slots: 8 });
  });
  afterAll(async () => {
    await stack?.close();
  });

  const tableOf = (q: string) => `nx_${q}_${stack.prefix.replace(/\W/g, '_').toLowerCase()}`;

  /** Deploys a query over the bounded stream (as fast as it goes unless `rate` says otherwise); returns the job's id. */
  async function deploy(q: NexmarkQuery, source: Record<string, unknown> = {}, sink: 'postgres' | 'blackhole' = 'postgres', table = tableOf(q)) {
    const graph = nexmarkQuery(q, { sink, table, source: { ...BOUNDED, rate: 0, ...source } });
    const p = await stack.client.createPipeline({ name: `nexmark-${table}`, graph });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 500 });
    return job.id;
  }

  async function runToEnd(q: NexmarkQuery) {
    const jobId = await deploy(q);
    const done = await waitForFinished(stack, jobId, 120_000);
    // Nothing went to a dead-letter or late output on the way.
    for (const [id, m] of Object.entries(done.metrics?.vertices ?? {}))
      expect({ id, dead: m.deadLetters, late: m.lateRecords }).toEqual({ id, dead: 0, late: 0 });
    return tableRows(tableOf(q));
  }

  it('q0: every bid reaches the blackhole; the source counts every event', async () => {
    const jobId = await deploy('q0', {}, 'blackhole');
    const done = await waitForFinished(stack, jobId, 120_000);
    expect(done.metrics?.vertices.bids?.recordsIn).toBe(BOUNDED.total);
    expect(done.metrics?.vertices.results?.recordsIn).toBe(events.bids.length);
  });

  it('q0 unbounded at p=1, the source chained to its sink: the subtask keeps reporting, never stalled, until canceled', async () => {
    // Nothing in the chain waits on Redis: the source loop itself must let the heartbeat and the metrics out.
    const graph = nexmarkQuery('q0', { parallelism: 1, sink: 'blackhole', source: { seed: 2, rate: 0, splits: 4 } });
    const p = await stack.client.createPipeline({ name: `nexmark-q0-unbounded-${stack.prefix}`, graph });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 1000 });
    await waitForState(stack, job.id, 'RUNNING');
    let seen = 0;
    for (let i = 0; i < 5; i++) {
      seen = await waitFor(
        async () => {
          const j = await stack.client.getJob(job.id);
          expect({ state: j.state, stall: j.stall }).toEqual({ state: 'RUNNING', stall: null });
          const n = j.metrics?.vertices.results?.recordsIn ?? 0;
          return n > seen && n;
        },
        10_000,
        'the blackhole to count more records',
        500,
      );
    }
    await waitForCheckpoint(stack, job.id);
    await stack.client.cancelJob(job.id);
    await waitForState(stack, job.id, 'CANCELED');
  });

  it('q1: every bid with its price in euros', async () => {
    const rows = await runToEnd('q1');
    expect(rows).toEqual(expectedQ1(events));
  });

  it('q2: the bids on every 123rd auction', async () => {
    const expected = expectedQ2(events);
    expect(expected.size).toBeGreaterThan(10);
    expect(await runToEnd('q2')).toEqual(expected);
  });

  it("q3: category 10's auctions with their sellers from OR, ID or CA", async () => {
    const expected = expectedQ3(events);
    expect(expected.size).toBeGreaterThan(10);
    const rows = await runToEnd('q3');
    const names = new Map([...rows].map(([k, v]) => [k, (v as { right: { name: string } }).right.name]));
    expect(names).toEqual(expected);
  });

  it("q4: per category, the average of each auction's highest bid while it was open", async () => {
    const expected = expectedQ4(events);
    expect(expected.size).toBe(5);
    expect(new Map([...(await runToEnd('q4'))].map(([k, v]) => [k, Number(v)]))).toEqual(expected);
  });

  it('q5: the auction with the most bids per sliding window', async () => {
    const rows = await runToEnd('q5');
    const got = new Map([...rows].map(([k, v]) => [k, { auction: (v as Hot).hottest.key, count: (v as Hot).hottest.count }]));
    expect(got).toEqual(expectedQ5(events));
  });

  it('q7: the highest bid of every 10 s window', async () => {
    const rows = await runToEnd('q7');
    const got = new Map([...rows].map(([k, v]) => [k, (v as { top: { top: unknown } }).top.top]));
    expect(got).toEqual(expectedQ7(events));
  });

  it('q8: people who created an auction in the window they registered in', async () => {
    const expected = expectedQ8(events);
    expect(expected.size).toBeGreaterThan(3);
    expect(await runToEnd('q8')).toEqual(expected);
  });

  it("q11: each bidder's sessions", async () => {
    expect(await runToEnd('q11')).toEqual(expectedQ11(events));
  });

  it('q12: processing-time windows add up to every bid per bidder', async () => {
    const rows = await runToEnd('q12');
    const sums = new Map<string, number>();
    for (const [k, v] of rows) {
      const bidder = k.split('|')[0]!;
      sums.set(bidder, (sums.get(bidder) ?? 0) + Number(v));
    }
    expect(sums).toEqual(bidsPerBidder(events));
  });

  // Paced, so that the kill and the rescales land while events flow: 150,000 events at 3,000/s take 50 s.
  const PACED: BoundedNexmark = { ...BOUNDED, total: 150_000 };
  it.each([
    ['q5', 'perAuction', 'hottest', expectedQ5, (v: unknown) => ({ auction: (v as Hot).hottest.key, count: (v as Hot).hottest.count })],
    ['q8', 'sameWindow', 'results', expectedQ8, (v: unknown) => v],
  ] as const)('%s stays exact across a kill -9 of a worker and live rescales 2 → 3 → 1', async (q, windowId, nextId, expected, valueOf) => {
    const table = tableOf(`${q}_chaos`);
    const jobId = await deploy(q, { ...PACED, rate: 3000 }, 'postgres', table);
    await waitForCheckpoint(stack, jobId);
    await killWorkerRunning(stack, jobId, windowId);
    await stack.addWorker();
    await waitForRecovered(stack, jobId, 90_000);
    await expectProgress(stack, jobId, windowId);
    await requestRescale(stack, jobId, windowId, 3);
    await converged(stack, jobId, windowId, 3);
    await expectProgress(stack, jobId, windowId);
    await requestRescale(stack, jobId, nextId, 1);
    await converged(stack, jobId, nextId, 1);
    await requestRescale(stack, jobId, windowId, 1);
    await converged(stack, jobId, windowId, 1);
    // The source was still going: the steps above happened while events flowed.
    const j = await stack.client.getJob(jobId);
    expect(j.metrics?.vertices[q === 'q5' ? 'bids' : 'events']?.recordsIn ?? 0).toBeLessThan(PACED.total);
    await waitForFinished(stack, jobId, 120_000);
    const rows = await tableRows(table);
    expect(new Map([...rows].map(([k, v]) => [k, valueOf(v)]))).toEqual(expected(nexmarkEvents(PACED)));
  });
});

interface Hot {
  hottest: { key: number; count: number };
}
