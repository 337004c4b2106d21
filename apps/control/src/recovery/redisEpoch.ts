import { randomUUID } from 'node:crypto';
import type { Logger, RedisKeys } from '@keyflow/runtime';
import type { Redis } from 'ioredis';
import type { JobManager } from '../jobs/jobManager.ts';
import type { RecoveryCoordinator } from './recoveryCoordinator.ts';

/**
 * Redis that comes back empty after a restart has lost every channel, command and task job: each active job then
 * recovers from its last checkpoint in Postgres. An epoch key tells: the coordinating control plane sets it, and it
 * is gone only if Redis lost its data.
 */
export class RedisEpoch {
  private epoch?: string;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly jobs: JobManager,
    private readonly recovery: RecoveryCoordinator,
    private readonly logger: Logger,
  ) {}

  /** Sets Redis's epoch unless one is there (another control plane's, set meanwhile, wins) and remembers it. */
  async take(): Promise<void> {
    await this.redis.set(this.keys.epoch, randomUUID(), 'NX');
    this.epoch = (await this.redis.get(this.keys.epoch)) ?? undefined;
  }

  async check(): Promise<void> {
    if (!this.jobs.coordinating) return;
    const epoch = await this.redis.get(this.keys.epoch);
    if (epoch !== null && epoch === this.epoch) return;
    if (epoch !== null) {
      this.epoch = epoch;
      return;
    }
    await this.take();
    this.logger.error({ jobs: this.jobs.active.size }, 'Redis lost its data; recovering every active job from its last checkpoint');
    for (const job of [...this.jobs.active.values()])
      // When Redis lost its data is not known (only when it was noticed): the timeline shows no detection time.
      await this.recovery
        .failOver(job, job.attempt, 'Redis restarted without its data (channels, commands and tasks lost)')
        .catch((err) => this.logger.error({ jobId: job.id, error: (err as Error).message }, 'recovery failed'));
  }
}
