import type { SubtaskProgress } from '../protocol.ts';
import type { OperatorChain } from './chain.ts';
import { now, type SubtaskContext } from './context.ts';
import type { Counters } from './counters.ts';
import type { Fencing } from './fencing.ts';
import type { Router } from './router.ts';

/**
 * The share of a window a subtask was busy, as Flink's busyTimeMsPerSecond: neither waiting for input (idle) nor on
 * full output channels (backpressured). Its subtasks share a worker's event loop, so the time others held it while
 * this one awaited anything else (Redis's reply to its writes, a sink's) counts here too.
 */
function busyShare(windowMs: number, idleMs: number, backpressuredMs: number): number {
  if (windowMs <= 0) return 0;
  return Math.min(1, Math.max(0, (windowMs - idleMs - backpressuredMs) / windowMs));
}

/** What the progress of a subtask is read from (see SubtaskProgress). */
export interface ProgressSources {
  /** Entries waiting in its input channels, or for a source 1 while it has events due. */
  backlog(): Promise<number>;
  /** Entries taken from its input channels since the last call. */
  takeRead(): number;
  /** Milliseconds it waited for input since the last call: for a source, with nothing due. */
  takeIdle(): number;
  aligning(t: number): SubtaskProgress['aligning'];
  lastBarrier(): number;
  restoring(): boolean;
  sinkWaiting(t: number): SubtaskProgress['sinkWaiting'];
}

/**
 * Reports metrics, progress and dead-letter samples on a clock of their own, not between batches: a subtask that
 * waits (on a full channel, for a barrier, for state) still says so, and only one whose process or event loop is
 * stuck goes silent. Each report ends with the fence check.
 */
export class MetricsReporter {
  private timer: NodeJS.Timeout | undefined;
  private reporting: Promise<unknown> | undefined;
  private last = now();
  /** The process's CPU time when the window began: its share over the window is the worker's CPU (cores). */
  private cpu = process.cpuUsage();

  constructor(
    private readonly ctx: SubtaskContext,
    private readonly counters: Counters,
    private readonly chain: OperatorChain,
    private readonly router: Router,
    private readonly progress: ProgressSources,
    private readonly fencing: Fencing,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.reporting) return;
      this.reporting = this.report(now())
        .catch((err) => this.ctx.log.warn({ error: (err as Error).message }, 'reporting metrics failed'))
        .finally(() => (this.reporting = undefined));
    }, this.ctx.settings.metricsIntervalMs);
  }

  /** Stops the clock and lets a report in flight finish, before the last one. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.reporting;
  }

  async report(t: number): Promise<void> {
    const { ctx } = this;
    const windowMs = t - this.last;
    this.last = t;
    const waited = this.router.takeBackpressure();
    const idle = this.progress.takeIdle();
    const vertices = this.counters.takeMetrics();
    const keyGroups = this.chain.takeKeyGroupRecords();
    const lag = this.chain.source?.source.lag?.();
    const used = process.cpuUsage(this.cpu);
    this.cpu = process.cpuUsage();
    await ctx.emit({
      type: 'metrics',
      windowMs: Math.round(windowMs),
      backpressure: Math.min(1, waited / windowMs),
      busy: busyShare(windowMs, idle, waited),
      worker: { id: ctx.deps.workerId, cpu: windowMs > 0 ? (used.user + used.system) / 1000 / windowMs : 0 },
      vertices,
      ...(keyGroups && { keyGroups }),
      progress: await this.progressAt(t),
      ...this.eventTime(),
      ...(lag && { sourceLag: lag }),
    });
    const samples = this.counters.takeSamples();
    const late = this.counters.takeLateSamples();
    if (samples.size || late.size) {
      const multi = ctx.redis.multi();
      for (const [vid, lines] of samples) {
        const key = ctx.deps.keys.deadLetters(ctx.task.jobId, vid);
        multi.lpush(key, ...lines).ltrim(key, 0, 99);
      }
      for (const [vid, lines] of late) {
        const key = ctx.deps.keys.lateRecords(ctx.task.jobId, vid);
        multi.lpush(key, ...lines).ltrim(key, 0, 99);
      }
      await multi.exec();
    }
    await this.fencing.check();
  }

  /** The subtask's watermark and idleness; the end's watermark (Infinity) is said as `watermarkEnded`. */
  private eventTime() {
    const { watermark } = this.ctx.time;
    if (watermark === Infinity) return { watermark: null, watermarkEnded: true, idle: false };
    return { watermark: Number.isFinite(watermark) ? watermark : null, idle: this.ctx.idle };
  }

  /** Where this subtask stands: what it has to do and whom it waits for. */
  private async progressAt(t: number): Promise<SubtaskProgress> {
    const p = this.progress;
    const read = p.takeRead();
    const backlog = await p.backlog();
    const blockedOn = this.router.blockedOn();
    const aligning = p.aligning(t);
    const sinkWaiting = p.sinkWaiting(t);
    return {
      backlog,
      ...(read > 0 && { read }),
      blockedOn,
      lastBarrier: p.lastBarrier(),
      ...(aligning && { aligning }),
      ...(p.restoring() && { restoring: true }),
      ...(sinkWaiting && { sinkWaiting }),
    };
  }
}
