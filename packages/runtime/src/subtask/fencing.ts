import type { SubtaskContext } from './context.ts';

/**
 * Whether this subtask may still run (DESIGN §7): the job's fence names the attempt allowed to, and a subtask of
 * any other attempt ends, fenced off; so does one whose worker is closing (aborted).
 */
export class Fencing {
  constructor(private readonly ctx: SubtaskContext) {}

  async check(): Promise<void> {
    const { ctx } = this;
    const fence = await ctx.redis.get(ctx.deps.keys.fence(ctx.task.jobId));
    if (fence !== String(ctx.task.attempt)) {
      if (!ctx.outcome) ctx.log.warn({ fence }, 'fenced off: another attempt of the job runs');
      ctx.outcome ??= 'fenced';
    }
    if (ctx.deps.signal?.aborted) ctx.outcome ??= 'aborted';
  }
}
