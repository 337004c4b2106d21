import { consumersFor, incarnationOf, type Chain, type Graph, type JobPlan } from '@keyflow/core';
import type { Command, RedisKeys, TaskData } from '@keyflow/runtime';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ActiveJob } from '../jobs/activeJob.ts';

/** A task job's id: job, attempt, chain and index, plus the rescale that started it (ids must stay unique). */
export const taskId = (jobId: string, attempt: number, chainId: string, index: number, scalingId?: number) =>
  `${jobId}.${attempt}.${chainId}.${index}${scalingId !== undefined ? `.s${scalingId}` : ''}`;

/**
 * Puts subtasks on the task queue and takes them off: one BullMQ task job per subtask (DESIGN §4), commands
 * on the job's command stream, the attempt fence, and the channels of old attempts.
 */
export class Scheduler {
  constructor(
    private readonly queue: Queue<TaskData>,
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  /** Lets `attempt` run and fences every other attempt's subtasks off. */
  async fence(jobId: string, attempt: number | 'ended'): Promise<void> {
    await this.redis.set(this.keys.fence(jobId), String(attempt));
  }

  /**
   * Puts every subtask of the job's attempt on the queue. With `costs` (cores per chain, what each used in the attempt
   * before) each subtask carries its share, and the costliest go first: placement then fills the least loaded worker
   * with each in turn (longest processing time first), instead of spreading every operator by count.
   */
  async enqueue(job: ActiveJob, restoreFrom?: number, costs?: ReadonlyMap<string, number>): Promise<void> {
    await this.fence(job.id, job.attempt);
    job.takenBy.clear();
    // Subtasks run with the plan the control plane holds, not one read later from the database.
    const extra = { plan: job.plan, ...(restoreFrom !== undefined && { restoreFrom }) };
    const tasks = job.chains.flatMap((c) => {
      const parallelism = job.plan.vertices[c.id]?.parallelism ?? c.parallelism;
      const cost = costs && { cost: Math.max(1, Math.round((1000 * (costs.get(c.id) ?? 0)) / parallelism)) };
      return Array.from({ length: parallelism }, (_, index) => this.task(job, c, index, { ...extra, parallelism, ...cost }));
    });
    // Stable: equal costs keep the chains' order (sources first).
    if (costs) tasks.sort((a, b) => b.data.cost! - a.data.cost!);
    await this.queue.addBulk(tasks);
    job.enqueuedAt = Date.now();
  }

  /** Puts the given subtasks of one chain on the queue; a rescale's new subtasks carry its plan and id. */
  async enqueueSubtasks(job: ActiveJob, chain: Chain, indexes: number[], extra: Partial<TaskData> = {}): Promise<void> {
    const parallelism = extra.plan?.vertices[chain.id]?.parallelism ?? chain.parallelism;
    if (extra.joinRescale !== undefined) {
      const [last] = await this.redis.xrevrange(this.keys.commands(job.id, job.attempt), '+', '-', 'COUNT', 1);
      extra = { ...extra, commandsAfter: last?.[0] ?? '0-0' };
    }
    await this.queue.addBulk(indexes.map((index) => this.task(job, chain, index, { parallelism, ...extra })));
  }

  /** One subtask's task job. */
  private task(job: ActiveJob, chain: Chain, index: number, extra: Partial<TaskData> & Pick<TaskData, 'parallelism'>) {
    const data: TaskData = { jobId: job.id, attempt: job.attempt, vertexId: chain.id, index, ...extra };
    return {
      name: `${chain.id}#${index}`,
      data,
      opts: {
        jobId: taskId(job.id, job.attempt, chain.id, index, extra.joinRescale),
        removeOnComplete: true,
        removeOnFail: { count: 1000 },
        attempts: 1,
      },
    };
  }

  /** Removes subtasks of a rescale that no worker picked up yet. */
  async removeWaiting(job: ActiveJob, chain: Chain, indexes: number[], scalingId: number): Promise<void> {
    for (const index of indexes) {
      const task = await this.queue.getJob(taskId(job.id, job.attempt, chain.id, index, scalingId));
      if (task && !(await task.isActive())) await task.remove().catch(() => {});
    }
  }

  /** Sends a command to the subtasks of the attempt it names. */
  async command(jobId: string, cmd: Command): Promise<void> {
    await this.redis.xadd(this.keys.commands(jobId, cmd.attempt), 'MAXLEN', '~', 1000, '*', 'c', JSON.stringify(cmd));
  }

  /** Stops an attempt's subtasks: a cancel command, and its task jobs that no worker has picked yet removed. */
  async stopAttempt(job: { id: string; chains: readonly { id: string; parallelism: number }[] }, attempt: number): Promise<void> {
    await this.command(job.id, { type: 'cancel', attempt });
    for (const c of job.chains)
      for (let i = 0; i < c.parallelism; i++) {
        const task = await this.queue.getJob(taskId(job.id, attempt, c.id, i));
        if (task && !(await task.isActive())) await task.remove().catch(() => {});
      }
  }

  /** Deletes every key an attempt of a job left: its channels, its command stream and its handovers. */
  async deleteAttempt(jobId: string, attempt: number): Promise<void> {
    await this.deleteMatching(this.keys.attemptPattern(jobId, attempt));
  }

  /**
   * Deletes what an ended job left in Redis: every attempt's keys and its fence. The samples and dead letters
   * that the API still serves stay for `keepMs`.
   */
  async deleteJob(jobId: string, keepMs: number): Promise<void> {
    const keep = (key: string) => key.includes(':sample:') || key.includes(':dlq:') || key.includes(':late:');
    await this.deleteMatching(this.keys.jobPattern(jobId), async (key) => {
      if (!keep(key)) return true;
      await this.redis.pexpire(key, keepMs);
      return false;
    });
  }

  /**
   * After a rescale: deletes the channels the plan no longer has (to or from a subtask it took away, or an
   * incarnation it replaced) and handovers of rescales other than `inFlight`, so nothing of them is left to read.
   */
  async deleteStale(jobId: string, attempt: number, graph: Graph, plan: JobPlan, inFlight?: number): Promise<void> {
    const live = new Set(channelKeys(this.keys, jobId, attempt, graph, plan));
    await this.deleteMatching(this.keys.channelPattern(jobId, attempt), (key) => !live.has(key));
    const handover = this.keys.handoverPattern(jobId, attempt).slice(0, -1);
    await this.deleteMatching(`${handover}*`, (key) => inFlight === undefined || !key.startsWith(`${handover}${inFlight}:`));
  }

  private async deleteMatching(pattern: string, filter: (key: string) => boolean | Promise<boolean> = () => true): Promise<void> {
    const stream = this.redis.scanStream({ match: pattern, count: 500 });
    for await (const found of stream as AsyncIterable<string[]>) {
      const doomed: string[] = [];
      for (const key of found) if (await filter(key)) doomed.push(key);
      if (doomed.length) await this.redis.unlink(...doomed);
    }
  }
}

/** Every channel a job's attempt has under a plan: per edge, each producer subtask to each consumer it writes to. */
export function channelKeys(keys: RedisKeys, jobId: string, attempt: number, graph: Graph, plan: JobPlan): string[] {
  return graph.edges.flatMap((edge, e) => {
    const from = plan.vertices[edge.from]!.parallelism;
    const to = plan.vertices[edge.to]!.parallelism;
    return Array.from({ length: from }, (_, i) =>
      consumersFor(edge, i, to).map((j) =>
        keys.channel(jobId, attempt, e, [i, incarnationOf(plan, edge.from, i)], [j, incarnationOf(plan, edge.to, j)]),
      ),
    ).flat();
  });
}
