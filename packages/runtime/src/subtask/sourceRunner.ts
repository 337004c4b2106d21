import { RateLimiter, type Output } from '@keyflow/core';
import type { Source } from '../connectors/source.ts';
import type { VertexMetrics } from '../protocol.ts';
import type { Commands } from './commands.ts';
import { now, type SubtaskContext } from './context.ts';
import type { Router } from './router.ts';

/** How long a source that has nothing due waits for commands at most. */
const IDLE_MS = 200;

/**
 * The loop of a subtask whose chain starts with a source: it emits batches at the source's rate, reads commands
 * between them (a checkpoint's trigger makes it emit the barrier), and finishes when the source is exhausted.
 */
export class SourceRunner {
  /** A stop-with-savepoint's trigger came: after its barrier the source emits nothing (unless the savepoint is aborted). */
  stopAfterBarrier = false;
  /** Whether it has events due now (not waiting for its rate): a source waiting for its rate has no backlog. */
  due = true;
  private lastCommandRead = 0;

  constructor(
    private readonly ctx: SubtaskContext,
    private readonly source: Source,
    private readonly counters: VertexMetrics,
    private readonly head: Output,
    private readonly commands: Commands,
    private readonly router: Router,
    private readonly afterWork: () => Promise<void>,
    private readonly finish: () => Promise<void>,
  ) {}

  /** Whether it has events left to emit now, for the metrics' progress. */
  get backlog(): boolean {
    return this.due && this.source.hasBacklog();
  }

  async run(): Promise<void> {
    const { ctx, source } = this;
    const { settings } = ctx;
    const limiter = new RateLimiter(source.rate, now());
    while (!ctx.outcome) {
      // Commands a wait inside a handler left queued.
      await this.commands.drain();
      const t = now();
      // A rescale may have changed this subtask's splits, and so its share of the rate.
      limiter.setRate(source.rate, t);
      const { budget, waitMs } = limiter.allowance(settings.batchSize, t);
      let wait = waitMs;
      if (this.stopAfterBarrier) wait = IDLE_MS;
      this.due = wait === 0;
      // Commands are read between batches: blocking while there is time to wait, else every linger period.
      if (wait > 0 || now() - this.lastCommandRead >= settings.lingerMs) {
        this.lastCommandRead = now();
        await this.commands.poll(this.router.buffered() ? Math.min(wait, settings.lingerMs) : Math.min(wait, IDLE_MS));
      }
      if (ctx.outcome || this.stopAfterBarrier) continue;
      // After the commands: a rescale handled there may have changed this subtask's splits.
      const { produced, exhausted } = source.emit(budget, this.head);
      this.counters.recordsIn += produced;
      limiter.took(produced);
      await this.afterWork();
      if (exhausted) {
        await this.finish();
        return;
      }
    }
  }
}
