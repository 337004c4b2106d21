import { END_OF_INPUT_WATERMARK, type JobMetrics } from '@keyflow/api';
import type { WorkerEvent } from '@keyflow/runtime';

type MetricsEvent = Extract<WorkerEvent, { type: 'metrics' }>;

interface SubtaskSample {
  at: number;
  event: MetricsEvent;
}

/** A subtask's rates count as zero once its last report is older than this. */
const STALE_MS = 3000;
/**
 * What a cost estimate averages: the reports of this long before the failure. After it the job is no longer itself
 * (a lost count leaves its source blocked on a full channel, using next to nothing), so nothing after it counts.
 */
const COST_WINDOW_MS = 5000;

/** One report's part in a cost estimate. */
interface CostSample {
  at: number;
  /** The subtask's chain (its vertex id). */
  chain: string;
  worker: string;
  cpu: number;
  busy: number;
}

/** Keeps each subtask's latest metrics and running totals, and sums them per operator for the UI. */
export class MetricsAggregator {
  private readonly latest = new Map<string, Map<string, SubtaskSample>>();
  /** Per job and subtask, its reports of the last two COST_WINDOW_MS with a worker's CPU (oldest first), for `costs`. */
  private readonly recent = new Map<string, Map<string, CostSample[]>>();
  private readonly totals = new Map<string, Map<string, { recordsIn: number; recordsOut: number; deadLetters: number; lateRecords: number }>>();

  private readonly keyGroupRecords = new Map<string, Map<string, Map<number, number>>>();

  /** Records seen per key group of each keyed operator since the job started (or the control plane did). */
  keyGroups(jobId: string): Map<string, Map<number, number>> {
    return this.keyGroupRecords.get(jobId) ?? new Map();
  }

  record(e: MetricsEvent): void {
    if (e.keyGroups) {
      let job = this.keyGroupRecords.get(e.jobId);
      if (!job) this.keyGroupRecords.set(e.jobId, (job = new Map()));
      for (const [vid, pairs] of Object.entries(e.keyGroups)) {
        let counts = job.get(vid);
        if (!counts) job.set(vid, (counts = new Map()));
        for (const [kg, n] of pairs) counts.set(kg, (counts.get(kg) ?? 0) + n);
      }
    }
    let job = this.latest.get(e.jobId);
    if (!job) this.latest.set(e.jobId, (job = new Map()));
    const at = Date.now();
    const key = `${e.vertexId}#${e.index}`;
    job.set(key, { at, event: e });
    if (e.worker) {
      let recent = this.recent.get(e.jobId);
      if (!recent) this.recent.set(e.jobId, (recent = new Map()));
      const list = (recent.get(key) ?? []).filter((x) => at - x.at <= 2 * COST_WINDOW_MS);
      list.push({ at, chain: e.vertexId, worker: e.worker.id, cpu: e.worker.cpu, busy: e.busy ?? 0 });
      recent.set(key, list);
    }
    let totals = this.totals.get(e.jobId);
    if (!totals) this.totals.set(e.jobId, (totals = new Map()));
    for (const [vid, m] of Object.entries(e.vertices)) {
      const t = totals.get(vid) ?? { recordsIn: 0, recordsOut: 0, deadLetters: 0, lateRecords: 0 };
      t.recordsIn += m.recordsIn;
      t.recordsOut += m.recordsOut;
      t.deadLetters += m.deadLetters;
      t.lateRecords += m.lateRecords ?? 0;
      totals.set(vid, t);
    }
  }

  /**
   * What each chain of the job used, in cores, over the few seconds up to `until` (a failure's time): each worker's
   * CPU shared among the subtasks it ran (of every job) by their busy shares, summed per chain. Undefined when a chain
   * has no report with its worker's CPU in that time (a new control plane, an older worker): no estimate is better
   * than half of one.
   */
  costs(jobId: string, chainIds: readonly string[], until = Date.now()): Map<string, number> | undefined {
    /** Per subtask of every job, its mean CPU and busy share in the window, and the worker it ran on last. */
    const perWorker = new Map<string, { jobId: string; chain: string; cpu: number; busy: number }[]>();
    for (const [job, subtasks] of this.recent)
      for (const samples of subtasks.values()) {
        const within = samples.filter((x) => x.at <= until && until - x.at <= COST_WINDOW_MS);
        if (!within.length) continue;
        const mean = (f: (x: CostSample) => number) => within.reduce((n, x) => n + f(x), 0) / within.length;
        const { worker, chain } = within.at(-1)!;
        const list = perWorker.get(worker) ?? [];
        list.push({ jobId: job, chain, cpu: mean((x) => x.cpu), busy: mean((x) => x.busy) });
        perWorker.set(worker, list);
      }
    const costs = new Map<string, number>();
    for (const subtasks of perWorker.values()) {
      // Each report read the worker's CPU over its own window: their mean is the worker's.
      const cpu = subtasks.reduce((n, s) => n + s.cpu, 0) / subtasks.length;
      const busy = subtasks.reduce((n, s) => n + s.busy, 0);
      for (const s of subtasks)
        if (s.jobId === jobId) costs.set(s.chain, (costs.get(s.chain) ?? 0) + cpu * (busy > 0 ? s.busy / busy : 1 / subtasks.length));
    }
    return chainIds.every((id) => costs.has(id)) ? costs : undefined;
  }

  /** Forgets an attempt's subtask samples (their rates), keeping the job's totals. */
  resetRates(jobId: string): void {
    this.latest.delete(jobId);
    this.recent.delete(jobId);
  }

  /** Forgets a subtask that a rescale stopped. */
  forgetSubtask(jobId: string, vertexId: string, index: number): void {
    this.latest.get(jobId)?.delete(`${vertexId}#${index}`);
    this.recent.get(jobId)?.delete(`${vertexId}#${index}`);
  }

  forget(jobId: string): void {
    this.latest.delete(jobId);
    this.recent.delete(jobId);
    this.keyGroupRecords.delete(jobId);
    this.totals.delete(jobId);
  }

  jobIds(): string[] {
    return [...this.latest.keys()];
  }

  snapshot(jobId: string): JobMetrics | null {
    const samples = this.latest.get(jobId);
    const totals = this.totals.get(jobId);
    if (!samples && !totals) return null;
    const now = Date.now();
    const subtasks: JobMetrics['subtasks'] = [];
    const vertices: JobMetrics['vertices'] = {};
    for (const [vid, t] of totals ?? [])
      vertices[vid] = {
        recordsInPerSec: 0,
        recordsOutPerSec: 0,
        backpressure: 0,
        busy: 0,
        deadLetters: t.deadLetters,
        recordsIn: t.recordsIn,
        recordsOut: t.recordsOut,
        lowWatermark: null,
        idle: false,
        lateRecords: t.lateRecords,
      };
    for (const { at, event } of samples?.values() ?? []) {
      const fresh = now - at < STALE_MS;
      const perSec = (n: number) => (fresh && event.windowMs > 0 ? (n * 1000) / event.windowMs : 0);
      for (const [vid, m] of Object.entries(event.vertices)) {
        const s = {
          vertexId: vid,
          index: event.index,
          recordsInPerSec: perSec(m.recordsIn),
          recordsOutPerSec: perSec(m.recordsOut),
          backpressure: fresh ? event.backpressure : 0,
          busy: fresh ? (event.busy ?? 0) : 0,
          deadLetters: m.deadLetters,
          watermark: event.watermarkEnded ? END_OF_INPUT_WATERMARK : (event.watermark ?? null),
          idle: event.idle ?? false,
          lateRecords: m.lateRecords ?? 0,
        };
        subtasks.push(s);
        const v = vertices[vid]!;
        v.recordsInPerSec += s.recordsInPerSec;
        v.recordsOutPerSec += s.recordsOutPerSec;
        v.backpressure = Math.max(v.backpressure, s.backpressure);
        v.busy = Math.max(v.busy, s.busy);
      }
    }
    for (const { at, event } of samples?.values() ?? [])
      if (event.sourceLag && now - at < STALE_MS) addLag(vertices[event.vertexId], event.sourceLag);
    // Per operator: the lowest watermark of its subtasks that are not idle (none while one of them has none yet);
    // idle when all of them are.
    for (const [vid, v] of Object.entries(vertices)) {
      const own = subtasks.filter((s) => s.vertexId === vid);
      const holding = own.filter((s) => !s.idle);
      v.idle = own.length > 0 && holding.length === 0;
      v.lowWatermark = holding.length > 0 && holding.every((s) => s.watermark !== null) ? Math.min(...holding.map((s) => s.watermark!)) : null;
    }
    subtasks.sort((a, b) => a.vertexId.localeCompare(b.vertexId) || a.index - b.index);
    return { jobId, at: new Date(now).toISOString(), vertices, subtasks };
  }
}

/** Adds a source subtask's split lags to its operator's: messages and bytes summed, time the most behind. */
function addLag(v: JobMetrics['vertices'][string] | undefined, splits: NonNullable<MetricsEvent['sourceLag']>): void {
  if (!v) return;
  const lag = (v.sourceLag ??= { splits: [] });
  for (const s of splits) {
    lag.splits.push(s);
    if (s.messages !== undefined) lag.messages = (lag.messages ?? 0) + s.messages;
    if (s.bytes !== undefined) lag.bytes = (lag.bytes ?? 0) + s.bytes;
    if (s.ms !== undefined) lag.ms = Math.max(lag.ms ?? 0, s.ms);
  }
  lag.splits.sort((a, b) => a.split - b.split);
}
