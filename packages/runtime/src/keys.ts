/**
 * Every Redis key Keyflow uses, in one place. Keys of one job share the hash tag `{jobId}`, so one blocking
 * XREAD over a subtask's channels and its job's command stream also works on Redis Cluster.
 */
export function redisKeys(prefix: string) {
  return {
    /** The BullMQ prefix of the task queue. */
    bullPrefix: `${prefix}:bull`,
    /** Worker → control: acknowledgements, lifecycle and metrics events of every job. */
    events: `${prefix}:events`,
    workers: `${prefix}:workers`,
    /** Set by the control plane that coordinates; gone means Redis lost its data (restarted empty). */
    epoch: `${prefix}:epoch`,
    worker: (workerId: string) => `${prefix}:worker:${workerId}`,
    /** Control → subtasks: commands (checkpoint triggers, stop, cancel) of one job. */
    commands: (jobId: string) => `${prefix}:{${jobId}}:cmd`,
    /** The attempt allowed to run; subtasks of any other attempt stop (fencing). */
    fence: (jobId: string) => `${prefix}:{${jobId}}:fence`,
    channel: (jobId: string, attempt: number, edge: number, from: number, to: number) =>
      `${prefix}:{${jobId}}:${attempt}:ch:${edge}:${from}:${to}`,
    /** A rescale's direct state handover to one subtask of the rescaled chain: moved key groups and source offsets. */
    handover: (jobId: string, attempt: number, scalingId: number, to: number) => `${prefix}:{${jobId}}:${attempt}:handover:${scalingId}:${to}`,
    channelPattern: (jobId: string, attempt: number | '*') => `${prefix}:{${jobId}}:${attempt}:ch:*`,
    sample: (jobId: string, vertexId: string) => `${prefix}:{${jobId}}:sample:${vertexId}`,
    deadLetters: (jobId: string, vertexId: string) => `${prefix}:{${jobId}}:dlq:${vertexId}`,
    jobPattern: (jobId: string) => `${prefix}:{${jobId}}:*`,
  };
}

export type RedisKeys = ReturnType<typeof redisKeys>;

/** The queue the control plane puts one task per subtask on. */
export const TASK_QUEUE = 'tasks';
