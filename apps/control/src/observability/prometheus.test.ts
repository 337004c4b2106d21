import type { ServerEventPayload } from '@keyflow/api';
import type { WorkerEvent } from '@keyflow/runtime';
import { describe, expect, it } from 'vitest';
import { MetricsAggregator } from './metrics.ts';
import { PrometheusMetrics } from './prometheus.ts';

type MetricsEvent = Extract<WorkerEvent, { type: 'metrics' }>;

function setup(opts: { coordinating?: boolean; active?: boolean; ownClock?: string[] } = {}) {
  const aggregator = new MetricsAggregator();
  const prom = new PrometheusMetrics({
    activeJobs: () => (opts.active ? [{ id: 'j1', state: 'RUNNING' as const, stalled: false, ownClock: new Set(opts.ownClock) }] : []),
    coordinating: () => opts.coordinating ?? true,
    workers: async () => [
      { id: 'w1', slots: 4, subtasks: [{}, {}], cpu: 0.75 },
      { id: 'w2', slots: 2, subtasks: [] },
    ],
    metrics: aggregator,
  });
  return { aggregator, prom };
}

const report = (vertices: MetricsEvent['vertices'], backpressure = 0, busy = 0, index = 0): MetricsEvent =>
  ({ type: 'metrics', jobId: 'j1', attempt: 1, vertexId: 'count', index, windowMs: 1000, backpressure, busy, vertices }) as MetricsEvent;

/** The value of one series in the exposition text, or undefined when it is absent. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const scaling = (status: ServerEventPayload<'scaling:event'>['status'], pauseMs: number | null): ServerEventPayload<'scaling:event'> => ({
  id: 7,
  jobId: 'j1',
  vertexId: 'count',
  chainVertices: ['count'],
  fromParallelism: 1,
  toParallelism: 2,
  status,
  requestedAt: new Date().toISOString(),
  subtasksStartedAt: null,
  alignedAt: null,
  snapshottedAt: null,
  restoredAt: null,
  runningAt: null,
  checkpointId: null,
  checkpointNumber: null,
  keyGroupsMoved: 64,
  bytesMoved: 1000,
  pauseMs,
  reason: null,
  resumesId: null,
});

describe('Prometheus metrics', () => {
  it("export each broker source split's lag, and the job graph gets the source's sum (messages) and most behind (time)", async () => {
    const { aggregator, prom } = setup({ active: true });
    const source = (index: number, sourceLag: MetricsEvent['sourceLag']): MetricsEvent =>
      ({ ...report({ events: { recordsIn: 1, recordsOut: 1, deadLetters: 0 } }), vertexId: 'events', index, sourceLag }) as MetricsEvent;
    aggregator.record(source(0, [{ split: 0, name: 'orders.0', messages: 120, ms: 1500 }]));
    aggregator.record(source(1, [{ split: 1, name: 'orders.1', messages: 30, ms: 4000 }]));
    const text = await prom.registry.metrics();
    expect(value(text, 'keyflow_source_lag_messages{job="j1",operator="events",split="orders.0"}')).toBe(120);
    expect(value(text, 'keyflow_source_lag_messages{job="j1",operator="events",split="orders.1"}')).toBe(30);
    expect(value(text, 'keyflow_source_lag_seconds{job="j1",operator="events",split="orders.1"}')).toBe(4);
    expect(text).not.toContain('keyflow_source_lag_bytes{');
    const lag = aggregator.snapshot('j1')!.vertices.events!.sourceLag!;
    expect(lag).toMatchObject({ messages: 150, ms: 4000 });
    expect(lag.splits.map((s) => s.name)).toEqual(['orders.0', 'orders.1']);
  });

  it("show each operator's busiest subtask's busy share, and each subtask's own", async () => {
    const { aggregator, prom } = setup({ active: true });
    // Two subtasks of count, one nearly always busy (the one that limits the job), one mostly waiting for input.
    aggregator.record(report({ count: { recordsIn: 10, recordsOut: 10, deadLetters: 0 } }, 0, 0.25, 0));
    aggregator.record(report({ count: { recordsIn: 90, recordsOut: 90, deadLetters: 0 } }, 0.1, 0.875, 1));
    const snapshot = aggregator.snapshot('j1')!;
    expect(snapshot.vertices.count).toMatchObject({ busy: 0.875, backpressure: 0.1 });
    expect(snapshot.subtasks.map((s) => [s.index, s.busy])).toEqual([
      [0, 0.25],
      [1, 0.875],
    ]);
    expect(value(await prom.scrape(), 'keyflow_operator_busy_ratio{job="j1",operator="count"}')).toBe(0.875);
  });

  it('add up the records each operator took in and sent on, and read backpressure at scrape time', async () => {
    const { aggregator, prom } = setup({ active: true });
    for (const e of [
      report({ count: { recordsIn: 10, recordsOut: 9, deadLetters: 1 } }, 0.25),
      report({ count: { recordsIn: 5, recordsOut: 5, deadLetters: 0 } }, 0.5),
    ]) {
      aggregator.record(e);
      prom.onWorkerMetrics(e);
    }
    const text = await prom.scrape();
    expect(value(text, 'keyflow_records_in_total{job="j1",operator="count"}')).toBe(15);
    expect(value(text, 'keyflow_records_out_total{job="j1",operator="count"}')).toBe(14);
    expect(value(text, 'keyflow_dead_letters_total{job="j1",operator="count"}')).toBe(1);
    expect(value(text, 'keyflow_operator_backpressure_ratio{job="j1",operator="count"}')).toBe(0.5);
    expect(value(text, 'keyflow_worker_slots{worker="w1"}')).toBe(4);
    expect(value(text, 'keyflow_worker_slots_used{worker="w1"}')).toBe(2);
    expect(value(text, 'keyflow_worker_cpu_cores{worker="w1"}')).toBe(0.75);
    // An older worker that does not measure it has no series, not a 0 that would read as idle.
    expect(value(text, 'keyflow_worker_cpu_cores{worker="w2"}')).toBeUndefined();
    expect(value(text, 'keyflow_control_lease_held')).toBe(1);
    expect(prom.contentType).toMatch(/^text\/plain/);
    // A job taken up from another control plane sent no state event here: its state is read at scrape time.
    expect(value(text, 'keyflow_job_state{job="j1",state="RUNNING"}')).toBe(1);
    expect(value(text, 'keyflow_job_stalled{job="j1"}')).toBe(0);
  });

  it("count late records, and give an operator's watermark lag behind the wall clock over its subtasks that are not idle", async () => {
    const { aggregator, prom } = setup({ active: true });
    const now = Date.now();
    const at = (index: number, watermark: number | null, idle = false): MetricsEvent => ({
      ...report({ window: { recordsIn: 10, recordsOut: 1, deadLetters: 0, lateRecords: 2 } }),
      vertexId: 'window',
      index,
      watermark,
      idle,
    });
    for (const e of [at(0, now - 4000), at(1, now - 2000), at(2, null, true)]) {
      aggregator.record(e);
      prom.onWorkerMetrics(e);
    }
    const text = await prom.scrape();
    expect(value(text, 'keyflow_late_records_total{job="j1",operator="window"}')).toBe(6);
    // The lowest watermark of the subtasks that hold one (the idle one does not): 4 s behind, give or take the scrape.
    const lag = value(text, 'keyflow_operator_watermark_lag_seconds{job="j1",operator="window"}')!;
    expect(lag).toBeGreaterThanOrEqual(4);
    expect(lag).toBeLessThan(10);
    expect(aggregator.snapshot('j1')!.vertices.window).toMatchObject({ lowWatermark: now - 4000, idle: false, lateRecords: 6 });
  });

  it('give no watermark lag for an operator whose event time is a generated source’s own clock', async () => {
    const { aggregator, prom } = setup({ active: true, ownClock: ['window'] });
    const e: MetricsEvent = {
      ...report({ window: { recordsIn: 10, recordsOut: 1, deadLetters: 0, lateRecords: 0 } }),
      vertexId: 'window',
      watermark: Date.UTC(2026, 0, 1),
      idle: false,
    };
    aggregator.record(e);
    prom.onWorkerMetrics(e);
    expect(value(await prom.scrape(), 'keyflow_operator_watermark_lag_seconds{job="j1",operator="window"}')).toBeUndefined();
  });

  it('count a rescale once however often its event is sent, with its pause', async () => {
    const { prom } = setup();
    prom.onEvent('scaling:event', scaling('ALIGNING', null));
    prom.onEvent('scaling:event', scaling('COMPLETED', 250));
    prom.onEvent('scaling:event', scaling('COMPLETED', 250));
    const text = await prom.scrape();
    expect(value(text, 'keyflow_rescales_total{job="j1",operator="count",outcome="completed"}')).toBe(1);
    expect(value(text, 'keyflow_rescale_pause_seconds_count{job="j1",operator="count"}')).toBe(1);
    expect(value(text, 'keyflow_rescale_pause_seconds_sum{job="j1",operator="count"}')).toBe(0.25);
  });

  it('show the state a job is in, its stalls, checkpoints and recoveries', async () => {
    const { prom } = setup({ coordinating: false });
    const at = new Date().toISOString();
    prom.onEvent('job:state', { jobId: 'j1', attempt: 1, from: 'SCHEDULING', to: 'RUNNING', reason: null, at });
    prom.onEvent('job:stall', {
      jobId: 'j1',
      stall: { jobId: 'j1', since: at, failoverAt: at, subtasks: [{ subtask: 'count#0', reason: 'silent', since: at }] },
    });
    const checkpoint = {
      id: 1,
      jobId: 'j1',
      number: 1,
      attempt: 1,
      kind: 'PERIODIC' as const,
      status: 'COMPLETED' as const,
      acknowledged: 2,
      totalSubtasks: 2,
      triggeredAt: at,
      completedAt: at,
      durationMs: 120,
      bytes: 5000,
      alignmentMs: 3,
      failureReason: null,
    };
    prom.onEvent('checkpoint:completed', checkpoint);
    prom.onEvent('checkpoint:failed', { ...checkpoint, id: 2, status: 'FAILED', failureReason: 'timed out' });
    const recovery = {
      id: 3,
      jobId: 'j1',
      attempt: 2,
      cause: 'worker lost',
      failedAt: at,
      detectedAt: at,
      checkpointId: 1,
      checkpointNumber: 1,
      runningAt: null,
      detectionMs: 10,
      recoveryMs: null,
      restoreMs: null,
      keyGroupsRestored: 0,
      bytesRestored: 0,
      status: 'RESTORING' as const,
      reason: null,
    };
    prom.onEvent('job:recovery', recovery);
    prom.onEvent('job:recovery', { ...recovery, status: 'RUNNING' });
    prom.onEvent('job:state', { jobId: 'j1', attempt: 2, from: 'RUNNING', to: 'RECOVERING', reason: 'worker lost', at });

    const text = await prom.scrape();
    expect(value(text, 'keyflow_job_state{job="j1",state="RECOVERING"}')).toBe(1);
    expect(value(text, 'keyflow_job_state{job="j1",state="RUNNING"}')).toBe(0);
    expect(value(text, 'keyflow_job_stalled{job="j1"}')).toBe(1);
    expect(value(text, 'keyflow_checkpoint_duration_seconds_sum{job="j1",kind="PERIODIC"}')).toBe(0.12);
    expect(value(text, 'keyflow_checkpoint_size_bytes_sum{job="j1",kind="PERIODIC"}')).toBe(5000);
    expect(value(text, 'keyflow_checkpoints_failed_total{job="j1",kind="PERIODIC"}')).toBe(1);
    expect(value(text, 'keyflow_recoveries_total{job="j1"}')).toBe(1);
    expect(value(text, 'keyflow_control_lease_held')).toBe(0);
  });
});
