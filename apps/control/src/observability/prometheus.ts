import {
  END_OF_INPUT_WATERMARK,
  isActive,
  jobStateSchema,
  type JobMetrics,
  type JobState,
  type ServerEventName,
  type ServerEventPayload,
} from '@keyflow/api';
import type { SourceLag as SplitLagDto, WorkerEvent } from '@keyflow/runtime';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { MetricsAggregator } from './metrics.ts';

type MetricsEvent = Extract<WorkerEvent, { type: 'metrics' }>;

/** What the collectors read at scrape time. */
export interface ScrapeSources {
  /** The jobs this control plane coordinates (none while it stands by), with their state and whether they are stalled. */
  /** `ownClock`: the operators whose event time is a generated source's own clock (see ownClockVertices). */
  activeJobs(): { id: string; state: JobState; stalled: boolean; ownClock?: ReadonlySet<string> }[];
  /** Whether this control plane holds the lease. */
  coordinating(): boolean;
  workers(): Promise<{ id: string; slots: number; subtasks: unknown[]; cpu?: number }[]>;
  metrics: MetricsAggregator;
}

/** Seconds, for durations from a few milliseconds (a checkpoint of a small job) to minutes (a large restore). */
const DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const SIZE_BUCKETS = [1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
/** How many finished scaling events and recoveries are remembered so that each is counted once. */
const SEEN_LIMIT = 10_000;

/**
 * The control plane's Prometheus metrics (`GET /metrics`). Counters move with what happens: worker metrics
 * reports (records, dead letters) and the events the control plane sends its clients (checkpoints, rescales,
 * recoveries, states, stalls); gauges (backpressure, slots, the lease) are read at scrape time.
 *
 * Labels: `job` (the job id) and `operator` (the vertex id). A job's series stay until the control plane restarts,
 * like Flink's reporters keep a finished job's last values until the process ends.
 */
export class PrometheusMetrics {
  readonly registry = new Registry();
  private readonly recordsIn: Counter<'job' | 'operator'>;
  private readonly recordsOut: Counter<'job' | 'operator'>;
  private readonly deadLetters: Counter<'job' | 'operator'>;
  private readonly lateRecords: Counter<'job' | 'operator'>;
  private readonly checkpointDuration: Histogram<'job' | 'kind'>;
  private readonly checkpointSize: Histogram<'job' | 'kind'>;
  private readonly checkpointsFailed: Counter<'job' | 'kind'>;
  private readonly rescalePause: Histogram<'job' | 'operator'>;
  private readonly rescales: Counter<'job' | 'operator' | 'outcome'>;
  private readonly recoveries: Counter<'job'>;
  private readonly jobState: Gauge<'job' | 'state'>;
  private readonly stalled: Gauge<'job'>;
  private readonly states = new Map<string, string>();
  private readonly counted = new Set<string>();

  constructor(sources: ScrapeSources) {
    const registry = this.registry;
    collectDefaultMetrics({ register: registry, prefix: 'keyflow_control_' });
    const perOperator = ['job', 'operator'] as const;
    this.recordsIn = new Counter({
      name: 'keyflow_records_in_total',
      help: 'Records an operator took in',
      labelNames: perOperator,
      registers: [registry],
    });
    this.recordsOut = new Counter({
      name: 'keyflow_records_out_total',
      help: 'Records an operator sent on',
      labelNames: perOperator,
      registers: [registry],
    });
    this.deadLetters = new Counter({
      name: 'keyflow_dead_letters_total',
      help: 'Records an operator could not process, set aside with the reason',
      labelNames: perOperator,
      registers: [registry],
    });
    this.lateRecords = new Counter({
      name: 'keyflow_late_records_total',
      help: "Records an operator's windows or joins took too late (beyond the allowed lateness), set aside with the reason",
      labelNames: perOperator,
      registers: [registry],
    });
    new Gauge({
      name: 'keyflow_operator_watermark_lag_seconds',
      help: 'How far the low watermark of an operator (over its subtasks that are not idle) is behind the wall clock; none where its event time is a generated source’s own clock',
      labelNames: perOperator,
      registers: [registry],
      collect() {
        this.reset();
        const now = Date.now();
        for (const { id: jobId, ownClock } of sources.activeJobs()) {
          const snapshot = sources.metrics.snapshot(jobId);
          for (const [operator, v] of Object.entries(snapshot?.vertices ?? {}))
            if (v.lowWatermark !== null && v.lowWatermark < END_OF_INPUT_WATERMARK && !ownClock?.has(operator))
              this.set({ job: jobId, operator }, (now - v.lowWatermark) / 1000);
        }
      },
    });
    const lagGauge = (name: string, help: string, of: (l: SplitLagDto) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: [...perOperator, 'split'],
        registers: [registry],
        collect() {
          this.reset();
          for (const { id: jobId } of sources.activeJobs()) {
            const snapshot = sources.metrics.snapshot(jobId);
            for (const [operator, v] of Object.entries(snapshot?.vertices ?? {}))
              for (const s of v.sourceLag?.splits ?? []) {
                const x = of(s);
                if (x !== undefined) this.set({ job: jobId, operator, split: s.name }, x);
              }
          }
        },
      });
    lagGauge('keyflow_source_lag_messages', 'Messages of a source split its broker holds that the source has not emitted yet', (s) => s.messages);
    lagGauge('keyflow_source_lag_bytes', 'Bytes a source split is behind its broker (Postgres changes: WAL bytes)', (s) => s.bytes);
    lagGauge(
      'keyflow_source_lag_seconds',
      "How far behind in time a source split is: the broker's newest message's time minus the last emitted one's",
      (s) => (s.ms === undefined ? undefined : s.ms / 1000),
    );
    const operatorGauge = (name: string, help: string, of: (v: JobMetrics['vertices'][string]) => number) =>
      new Gauge({
        name,
        help,
        labelNames: perOperator,
        registers: [registry],
        collect() {
          this.reset();
          for (const { id: jobId } of sources.activeJobs()) {
            const snapshot = sources.metrics.snapshot(jobId);
            for (const [operator, v] of Object.entries(snapshot?.vertices ?? {})) this.set({ job: jobId, operator }, of(v));
          }
        },
      });
    operatorGauge(
      'keyflow_operator_backpressure_ratio',
      'Share of the last report window the most backpressured subtask of an operator waited on a full output (0..1)',
      (v) => v.backpressure,
    );
    operatorGauge(
      'keyflow_operator_busy_ratio',
      'Share of the last report window the busiest subtask of an operator was neither waiting for input nor on a full output (0..1)',
      (v) => v.busy,
    );
    this.checkpointDuration = new Histogram({
      name: 'keyflow_checkpoint_duration_seconds',
      help: 'Trigger to completion of a completed checkpoint',
      labelNames: ['job', 'kind'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
    this.checkpointSize = new Histogram({
      name: 'keyflow_checkpoint_size_bytes',
      help: 'State written by a completed checkpoint',
      labelNames: ['job', 'kind'],
      buckets: SIZE_BUCKETS,
      registers: [registry],
    });
    this.checkpointsFailed = new Counter({
      name: 'keyflow_checkpoints_failed_total',
      help: 'Checkpoints that failed (declined, timed out, or abandoned)',
      labelNames: ['job', 'kind'],
      registers: [registry],
    });
    this.rescalePause = new Histogram({
      name: 'keyflow_rescale_pause_seconds',
      help: 'How long a completed live rescale held the operator up (barrier aligned to running again)',
      labelNames: perOperator,
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
    this.rescales = new Counter({
      name: 'keyflow_rescales_total',
      help: 'Live rescales that ended, by outcome (completed, rolled_back, failed, interrupted)',
      labelNames: ['job', 'operator', 'outcome'],
      registers: [registry],
    });
    this.recoveries = new Counter({
      name: 'keyflow_recoveries_total',
      help: 'Recoveries a job went through',
      labelNames: ['job'],
      registers: [registry],
    });
    // Jobs taken up from another control plane have sent no state event here: read at scrape time as well.
    this.jobState = new Gauge({
      name: 'keyflow_job_state',
      help: '1 for the state a job is in, 0 for the others',
      labelNames: ['job', 'state'],
      registers: [registry],
      collect: () => {
        for (const job of sources.activeJobs()) {
          this.setState(job.id, job.state);
          this.stalled.set({ job: job.id }, job.stalled ? 1 : 0);
        }
      },
    });
    this.stalled = new Gauge({
      name: 'keyflow_job_stalled',
      help: '1 while a job is stalled (something it waits on does not move), else 0',
      labelNames: ['job'],
      registers: [registry],
    });
    new Gauge({
      name: 'keyflow_worker_slots',
      help: 'Slots a live worker offers',
      labelNames: ['worker'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const w of await sources.workers()) this.set({ worker: w.id }, w.slots);
      },
    });
    new Gauge({
      name: 'keyflow_worker_slots_used',
      help: 'Slots a live worker runs subtasks in',
      labelNames: ['worker'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const w of await sources.workers()) this.set({ worker: w.id }, w.subtasks.length);
      },
    });
    new Gauge({
      name: 'keyflow_worker_cpu_cores',
      help: 'Cores a live worker process used over its last few heartbeats, all its threads together',
      labelNames: ['worker'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const w of await sources.workers()) if (w.cpu !== undefined) this.set({ worker: w.id }, w.cpu);
      },
    });
    new Gauge({
      name: 'keyflow_control_lease_held',
      help: '1 while this control plane holds the lease and coordinates the jobs, 0 while it stands by',
      registers: [registry],
      collect() {
        this.set(sources.coordinating() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'keyflow_jobs_active',
      help: 'Jobs this control plane coordinates',
      registers: [registry],
      collect() {
        this.set(sources.activeJobs().length);
      },
    });
  }

  /** A subtask's metrics report: what its operators took in and sent on since the last one. */
  onWorkerMetrics(e: MetricsEvent): void {
    for (const [operator, m] of Object.entries(e.vertices)) {
      const labels = { job: e.jobId, operator };
      if (m.recordsIn) this.recordsIn.inc(labels, m.recordsIn);
      if (m.recordsOut) this.recordsOut.inc(labels, m.recordsOut);
      if (m.deadLetters) this.deadLetters.inc(labels, m.deadLetters);
      if (m.lateRecords) this.lateRecords.inc(labels, m.lateRecords);
    }
  }

  /** An event the control plane sent its clients. */
  onEvent<E extends ServerEventName>(event: E, payload: ServerEventPayload<E>): void {
    switch (event) {
      case 'checkpoint:completed': {
        const c = payload as ServerEventPayload<'checkpoint:completed'>;
        const labels = { job: c.jobId, kind: c.kind };
        if (c.durationMs !== null) this.checkpointDuration.observe(labels, c.durationMs / 1000);
        this.checkpointSize.observe(labels, c.bytes);
        break;
      }
      case 'checkpoint:failed': {
        const c = payload as ServerEventPayload<'checkpoint:failed'>;
        this.checkpointsFailed.inc({ job: c.jobId, kind: c.kind });
        break;
      }
      case 'scaling:event': {
        const s = payload as ServerEventPayload<'scaling:event'>;
        if (!['COMPLETED', 'ROLLED_BACK', 'FAILED', 'INTERRUPTED'].includes(s.status) || !this.once(`scaling:${s.id}`)) break;
        this.rescales.inc({ job: s.jobId, operator: s.vertexId, outcome: s.status.toLowerCase() });
        if (s.status === 'COMPLETED' && s.pauseMs !== null) this.rescalePause.observe({ job: s.jobId, operator: s.vertexId }, s.pauseMs / 1000);
        break;
      }
      case 'job:recovery': {
        const r = payload as ServerEventPayload<'job:recovery'>;
        if (this.once(`recovery:${r.id}`)) this.recoveries.inc({ job: r.jobId });
        break;
      }
      case 'job:state': {
        const s = payload as ServerEventPayload<'job:state'>;
        this.setState(s.jobId, s.to);
        if (!isActive(s.to)) this.stalled.set({ job: s.jobId }, 0);
        break;
      }
      case 'job:stall': {
        const s = payload as ServerEventPayload<'job:stall'>;
        this.stalled.set({ job: s.jobId }, s.stall ? 1 : 0);
        break;
      }
    }
  }

  private setState(jobId: string, to: JobState): void {
    const before = this.states.get(jobId);
    if (before === to) return;
    if (before === undefined) {
      for (const state of jobStateSchema.options) this.jobState.set({ job: jobId, state }, 0);
      this.stalled.set({ job: jobId }, 0);
    } else this.jobState.set({ job: jobId, state: before }, 0);
    this.jobState.set({ job: jobId, state: to }, 1);
    this.states.set(jobId, to);
  }

  /** True the first time `key` is seen (an event sent again counts once). */
  private once(key: string): boolean {
    if (this.counted.has(key)) return false;
    if (this.counted.size >= SEEN_LIMIT) this.counted.delete(this.counted.values().next().value!);
    this.counted.add(key);
    return true;
  }

  scrape(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
