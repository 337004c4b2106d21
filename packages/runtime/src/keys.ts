/**
 * One end of a channel: a subtask index and the incarnation running it (0: started with the attempt, else the id
 * of the rescale that started it; see `rescaledPlan`). A channel is named by both ends' incarnations, so a subtask
 * a later rescale starts at an index never reads what was left for the one that held the index before.
 */
export type ChannelEnd = readonly [index: number, incarnation: number];

/**
 * Every Redis key Keyflow uses, in one place. Keys of one job share the hash tag `{jobId}`, so one blocking
 * XREAD over a subtask's channels and its job's command stream also works on Redis Cluster. Keys of one attempt
 * share the prefix `attemptPattern` gives: a recovery deletes them all at once.
 */
export function redisKeys(prefix: string) {
  return {
    /** The BullMQ prefix of the task queue. */
    bullPrefix: `${prefix}:bull`,
    /** Worker → control: acknowledgements, lifecycle and metrics events of every job. */
    events: `${prefix}:events`,
    /** Entries of the events stream that were not valid events, with the reason (newest first). */
    malformedEvents: `${prefix}:dlq:events`,
    workers: `${prefix}:workers`,
    /** Per worker, the subtasks it runs (a hash: worker id → count), kept by the workers as they take and end them. */
    workerLoad: `${prefix}:workers:load`,
    /**
     * One worker's cost hash: what its subtasks cost in all (`all`, milli-cores) and per attempt (`<job>|<attempt>`):
     * placement weighs a recovered attempt's subtasks by what they used before (see TaskData.cost).
     */
    workerCost: (workerId: string) => `${prefix}:worker:${workerId}:cost`,
    /** Sign-in attempts for one account (a hash of its email) in the current minute. */
    signIn: (account: string) => `${prefix}:signin:${account}`,
    /** Set by the control plane that coordinates; gone means Redis lost its data (restarted empty). */
    epoch: `${prefix}:epoch`,
    worker: (workerId: string) => `${prefix}:worker:${workerId}`,
    /** Control → subtasks: commands (checkpoint triggers, stop, cancel) of one attempt of a job. */
    commands: (jobId: string, attempt: number) => `${prefix}:{${jobId}}:${attempt}:cmd`,
    /** The attempt allowed to run; subtasks of any other attempt stop (fencing). */
    fence: (jobId: string) => `${prefix}:{${jobId}}:fence`,
    channel: (jobId: string, attempt: number, edge: number, from: ChannelEnd, to: ChannelEnd) =>
      `${prefix}:{${jobId}}:${attempt}:ch:${edge}:${from[0]}.${from[1]}:${to[0]}.${to[1]}`,
    /** A rescale's direct state handover to one subtask of the rescaled chain: moved key groups and source offsets. */
    handover: (jobId: string, attempt: number, scalingId: number, to: number) => `${prefix}:{${jobId}}:${attempt}:handover:${scalingId}:${to}`,
    /** Per worker and vertex, the subtasks of one attempt it runs (a hash: `worker|vertex` → count): how they spread. */
    placement: (jobId: string, attempt: number) => `${prefix}:{${jobId}}:${attempt}:placement`,
    channelPattern: (jobId: string, attempt: number) => `${prefix}:{${jobId}}:${attempt}:ch:*`,
    handoverPattern: (jobId: string, attempt: number) => `${prefix}:{${jobId}}:${attempt}:handover:*`,
    /** Every key of one attempt: its channels, commands and handovers. */
    attemptPattern: (jobId: string, attempt: number) => `${prefix}:{${jobId}}:${attempt}:*`,
    sample: (jobId: string, vertexId: string) => `${prefix}:{${jobId}}:sample:${vertexId}`,
    deadLetters: (jobId: string, vertexId: string) => `${prefix}:{${jobId}}:dlq:${vertexId}`,
    /** Samples of the records an operator's windows took too late (its late output). */
    lateRecords: (jobId: string, vertexId: string) => `${prefix}:{${jobId}}:late:${vertexId}`,
    jobPattern: (jobId: string) => `${prefix}:{${jobId}}:*`,
    /**
     * The ingest log of HTTP source `name`, one stream per partition: what is POSTed to /api/ingest/<name> waits here
     * until a checkpoint covers it. Named for the source, not a job, so it outlives a job's restart (the name's hash tag
     * keeps a source's partitions on one slot, for the one script that appends to them all).
     */
    ingest: (name: string, partition: number) => `${prefix}:ingest:{${name}}:${partition}`,
    /** Per partition of an ingest log, the entry id it was last trimmed through (a hash): what a restore cannot read any more. */
    ingestTrimmed: (name: string) => `${prefix}:ingest:{${name}}:trimmed`,
  };
}

export type RedisKeys = ReturnType<typeof redisKeys>;

/** The queue the control plane puts one task per subtask on. */
export const TASK_QUEUE = 'tasks';
