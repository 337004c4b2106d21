import { isTerminal } from '@keyflow/api';
import type { Job, JobState, PrismaClient } from '@keyflow/db';
import type { Logger } from '@keyflow/runtime';
import type { Emitter } from '../http/emitter.ts';

/** Every legal job transition, in one place (DESIGN §9): from each state, where a job may go. */
export const transitions: Record<JobState, readonly JobState[]> = {
  // A control plane that stopped between creating a job and scheduling it recovers it when it starts again.
  CREATED: ['SCHEDULING', 'RECOVERING', 'CANCELED', 'FAILED'],
  SCHEDULING: ['RUNNING', 'RECOVERING', 'CANCELED', 'FAILED'],
  RUNNING: ['RESCALING', 'RECOVERING', 'STOPPING', 'CANCELED', 'FAILED', 'FINISHED'],
  RESCALING: ['RUNNING', 'RECOVERING', 'CANCELED', 'FAILED'],
  // A failure of the new attempt before it runs (its restore fails) starts another attempt.
  RECOVERING: ['RUNNING', 'RECOVERING', 'CANCELED', 'FAILED'],
  STOPPING: ['STOPPED', 'RUNNING', 'RECOVERING', 'CANCELED', 'FAILED'],
  STOPPED: [],
  CANCELED: [],
  FAILED: [],
  FINISHED: [],
};

export class IllegalTransition extends Error {
  constructor(
    readonly jobId: string,
    readonly from: JobState,
    readonly to: JobState,
  ) {
    super(`job ${jobId} cannot go from ${from} to ${to}`);
  }
}

/**
 * The one owner of job states: every change is checked against `transitions`, stored with a job event in one
 * transaction, and emitted on Socket.IO. Coordinators ask it to move a job; none sets a state itself.
 */
export class JobLifecycle {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly emitter: Emitter,
    private readonly logger: Logger,
  ) {}

  async transition(jobId: string, to: JobState, reason?: string, data: { attempt?: number } = {}): Promise<Job> {
    const job = await this.prisma.$transaction(async (tx) => {
      const current = await tx.job.findUniqueOrThrow({ where: { id: jobId } });
      // Already there (an earlier attempt at this transition committed after its caller gave up): nothing to do.
      if (current.state === to && data.attempt === undefined) return { updated: current, event: undefined, from: current.state };
      if (!transitions[current.state].includes(to)) throw new IllegalTransition(jobId, current.state, to);
      const updated = await tx.job.update({
        where: { id: jobId, state: current.state },
        data: {
          state: to,
          ...(data.attempt !== undefined && { attempt: data.attempt }),
          ...(isTerminal(to) && { endedAt: new Date() }),
          ...(to === 'FAILED' && { failureReason: reason ?? 'failed' }),
        },
      });
      const event = await tx.jobEvent.create({
        data: { jobId, attempt: updated.attempt, fromState: current.state, toState: to, reason: reason ?? null },
      });
      return { updated, event, from: current.state };
    });
    if (!job.event) return job.updated;
    const fields = { jobId, attempt: job.updated.attempt, from: job.from, to, reason: reason ?? null };
    if (to === 'FAILED') this.logger.error(fields, 'job state');
    else if (to === 'RECOVERING') this.logger.warn(fields, 'job state');
    else this.logger.info(fields, 'job state');
    this.emitter.jobState({
      jobId,
      attempt: job.updated.attempt,
      from: job.from,
      to,
      reason: reason ?? null,
      at: job.event.at.toISOString(),
    });
    return job.updated;
  }

  /** Records the creation of a job as its first event. */
  async created(job: Job): Promise<void> {
    const event = await this.prisma.jobEvent.create({ data: { jobId: job.id, attempt: job.attempt, fromState: null, toState: 'CREATED' } });
    this.emitter.jobState({ jobId: job.id, attempt: job.attempt, from: null, to: 'CREATED', reason: null, at: event.at.toISOString() });
  }
}
