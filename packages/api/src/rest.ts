import { auditEventSchema } from './auth.ts';
import { graphIssueSchema, httpSourceSettings } from '@keyflow/core';
import { z } from 'zod';

export const jobStateSchema = z.enum([
  'CREATED',
  'SCHEDULING',
  'RUNNING',
  'RESCALING',
  'RECOVERING',
  'STOPPING',
  'STOPPED',
  'CANCELED',
  'FAILED',
  'FINISHED',
]);
export type JobState = z.infer<typeof jobStateSchema>;

/** States a job never leaves. */
export const TERMINAL_STATES: readonly JobState[] = ['STOPPED', 'CANCELED', 'FAILED', 'FINISHED'];
/** States of a job that has not ended: the control plane coordinates it (CREATED only for an instant, at deploy). */
export const ACTIVE_STATES: readonly JobState[] = jobStateSchema.options.filter((s) => !TERMINAL_STATES.includes(s));
export const isTerminal = (state: JobState) => TERMINAL_STATES.includes(state);
export const isActive = (state: JobState) => !isTerminal(state);
/** States in which a rescale may be asked for (`PATCH /jobs/:id`): it runs once the job is RUNNING. */
export const RESCALABLE_STATES: readonly JobState[] = ['SCHEDULING', 'RUNNING', 'RESCALING', 'RECOVERING'];

/** MANUAL: asked for by hand (`POST /jobs/:id/checkpoints`); RESCALE: the one barrier of a live rescale. */
export const checkpointKindSchema = z.enum(['PERIODIC', 'MANUAL', 'SAVEPOINT', 'RESCALE']);
/** DISCARDED: completed, then let go by retention (its state is deleted; the row stays as history). */
export const checkpointStatusSchema = z.enum(['PENDING', 'COMPLETED', 'FAILED', 'DISCARDED']);

const pipelineName = z.string().trim().min(1, 'a name is needed').max(100, 'at most 100 characters');

// Request bodies and parameters.
export const createPipelineBody = z.object({ name: pipelineName, graph: z.unknown() }).strict();
export const createVersionBody = z.object({ graph: z.unknown() }).strict();
export const renamePipelineBody = z.object({ name: pipelineName }).strict();
export const deployJobBody = z
  .object({
    pipelineId: z.uuid(),
    /** The pipeline version to run; the latest when left out. */
    version: z.number().int().min(1).optional(),
    /** A completed checkpoint (of any job of this pipeline) to restore state and offsets from. */
    restoreFromCheckpointId: z.number().int().positive().optional(),
    checkpointIntervalMs: z.number().int().min(100).max(3_600_000).optional(),
    checkpointTimeoutMs: z.number().int().min(1000).max(3_600_000).optional(),
    /** Parallelism per operator for this job, instead of the version's (e.g. to start from a savepoint at another parallelism). */
    parallelism: z.record(z.string().min(1).max(64), z.number().int().min(1).max(32_768)).optional(),
    /** Checkpoints that may fail in a row (e.g. while Postgres is unreachable) before the job fails over; 3 when left out. */
    tolerableCheckpointFailures: z.number().int().min(0).max(1000).optional(),
  })
  .strict();
export const idParams = z.object({ id: z.uuid() }).strict();
/** A checkpoint's (or savepoint's) numeric id in a path. */
export const checkpointIdParams = z
  .object({
    id: z.coerce
      .number()
      .int()
      .positive()
      .max(2 ** 31 - 1),
  })
  .strict();
export const sampleParams = z.object({ id: z.uuid(), vertexId: z.string().min(1).max(64) }).strict();
export const listJobsQuery = z.object({ pipelineId: z.uuid().optional(), state: jobStateSchema.optional() }).strict();

// Responses.
export const pipelineVersionSchema = z.object({
  id: z.string(),
  version: z.number(),
  graph: z.unknown(),
  createdAt: z.string(),
});
export const pipelineSchema = z.object({
  id: z.string(),
  name: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  latestVersion: z.number(),
  versions: z.array(pipelineVersionSchema).optional(),
});
export const vertexPlanSchema = z.object({ parallelism: z.number(), maxParallelism: z.number() });
export const jobEventSchema = z.object({
  at: z.string(),
  attempt: z.number(),
  fromState: jobStateSchema.nullable(),
  toState: jobStateSchema,
  reason: z.string().nullable(),
});
/** The watermark of a stream that ended (every window fired): the latest time a Date can hold, ms. */
export const END_OF_INPUT_WATERMARK = 8.64e15;
export const subtaskMetricsSchema = z.object({
  vertexId: z.string(),
  index: z.number(),
  recordsInPerSec: z.number(),
  recordsOutPerSec: z.number(),
  backpressure: z.number(),
  /** Share of the last report's window neither waiting for input nor on full output channels (Flink's busy time), 0…1. */
  busy: z.number(),
  deadLetters: z.number(),
  /**
   * Event time this subtask has reached, ms since the epoch: a source's output watermark, any other operator's input
   * watermark (the minimum over its active input channels). Null: none yet. `END_OF_INPUT_WATERMARK`: its input ended.
   */
  watermark: z.number().nullable(),
  /** Every input (or, for a source, every split) is idle: it holds no watermark back. */
  idle: z.boolean(),
  /** Records its windows took too late, in the last report. */
  lateRecords: z.number(),
});
export const vertexMetricsSchema = z.object({
  recordsInPerSec: z.number(),
  recordsOutPerSec: z.number(),
  backpressure: z.number(),
  /** The busiest of its subtasks' busy shares: the operator that limits the job is the one near 1. */
  busy: z.number(),
  deadLetters: z.number(),
  recordsIn: z.number(),
  recordsOut: z.number(),
  /** The minimum watermark over its subtasks that are not idle (null: none yet, or all idle). */
  lowWatermark: z.number().nullable(),
  /** Every subtask idle. */
  idle: z.boolean(),
  /** Records its windows took too late (beyond the allowed lateness), since the job started. */
  lateRecords: z.number(),
  /** A source reading a broker: how far behind it is, per split and in all (messages and bytes summed, time the most). */
  sourceLag: z
    .object({
      splits: z.array(
        z.object({
          split: z.number(),
          name: z.string(),
          messages: z.number().optional(),
          bytes: z.number().optional(),
          ms: z.number().optional(),
        }),
      ),
      messages: z.number().optional(),
      bytes: z.number().optional(),
      ms: z.number().optional(),
    })
    .optional(),
});
export const jobMetricsSchema = z.object({
  jobId: z.string(),
  at: z.string(),
  vertices: z.record(z.string(), vertexMetricsSchema),
  subtasks: z.array(subtaskMetricsSchema),
});
export const checkpointSchema = z.object({
  id: z.number(),
  jobId: z.string(),
  number: z.number(),
  attempt: z.number(),
  kind: checkpointKindSchema,
  status: checkpointStatusSchema,
  acknowledged: z.number(),
  totalSubtasks: z.number(),
  triggeredAt: z.string(),
  completedAt: z.string().nullable(),
  durationMs: z.number().nullable(),
  bytes: z.number(),
  alignmentMs: z.number().nullable(),
  failureReason: z.string().nullable(),
});
export const checkpointAckSchema = z.object({
  vertexId: z.string(),
  subtaskIndex: z.number(),
  ackedAt: z.string(),
  alignmentMs: z.number(),
  syncMs: z.number(),
  asyncMs: z.number(),
  bytes: z.number(),
});
export const checkpointDetailSchema = checkpointSchema.extend({ acks: z.array(checkpointAckSchema) });
/**
 * A running job that makes no progress although work waits (or a checkpoint hangs): the subtasks that hold it up,
 * each with why, since when, and when the job fails over if it does not move again. Only the culprits are named,
 * not the subtasks that merely wait for them.
 */
export const stallSchema = z.object({
  jobId: z.string(),
  since: z.string(),
  failoverAt: z.string(),
  /** Per subtask that holds the job up: why, and since when it has not moved. */
  subtasks: z.array(z.object({ subtask: z.string(), reason: z.string(), since: z.string() })),
});
export type Stall = z.infer<typeof stallSchema>;

export const jobSchema = z.object({
  id: z.string(),
  pipelineId: z.string(),
  pipelineName: z.string(),
  version: z.number(),
  state: jobStateSchema,
  attempt: z.number(),
  plan: z.object({ vertices: z.record(z.string(), vertexPlanSchema) }),
  /** The parallelism per operator the job converges to (what was asked for last); equal to the plan's when settled. */
  desiredParallelism: z.record(z.string(), z.number()),
  /** Set while the job is stalled (see stallSchema). */
  stall: stallSchema.nullable(),
  checkpointIntervalMs: z.number(),
  tolerableCheckpointFailures: z.number(),
  /** The checkpoint the job was deployed from: its id, and its job and number there. */
  restoredFromId: z.number().nullable(),
  restoredFrom: z.object({ jobId: z.string(), number: z.number() }).nullable(),
  failureReason: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  endedAt: z.string().nullable(),
});
/** Checkpoints of a running job that failed in a row, against what it tolerates before it fails over. */
export const checkpointFailuresSchema = z.object({
  jobId: z.string(),
  consecutive: z.number(),
  tolerable: z.number(),
  lastReason: z.string().nullable(),
  at: z.string(),
});
/** Every checkpoint of a job so far, by status (the history lists the newest 100). */
export const checkpointCountsSchema = z.object({
  /** Every checkpoint number given out: completed, failed, in progress, or a savepoint since deleted. */
  triggered: z.number(),
  inProgress: z.number(),
  /** Completed, those retention let go since (DISCARDED) included. */
  completed: z.number(),
  failed: z.number(),
  discarded: z.number(),
});
export type CheckpointCounts = z.infer<typeof checkpointCountsSchema>;

export const jobDetailSchema = jobSchema.extend({
  graph: z.unknown(),
  events: z.array(jobEventSchema),
  metrics: jobMetricsSchema.nullable(),
  latestCheckpoints: z.array(checkpointSchema),
  /** Whether each sink's output is exactly-once or at-least-once. */
  sinkGuarantees: z.record(z.string(), z.enum(['exactly-once', 'at-least-once'])),
  /** For a job this control plane coordinates: its checkpoints that failed in a row. */
  checkpointFailures: checkpointFailuresSchema.nullable(),
  checkpointCounts: checkpointCountsSchema,
  /** Who did what to this job (deploy, rescales, stop, cancel, savepoints), oldest first. */
  audit: z.array(auditEventSchema),
});
export const workerSchema = z.object({
  id: z.string(),
  host: z.string(),
  pid: z.number(),
  slots: z.number(),
  usedSlots: z.number(),
  /** Cores the worker process used over its last heartbeats (every thread of it); absent from older workers. */
  cpu: z.number().optional(),
  /** When the worker last beat, by Redis's clock (the one heartbeats are judged by). */
  lastHeartbeat: z.string(),
  /** How old that heartbeat was when the list was read, by the same clock: compare this, not `lastHeartbeat` with another clock. */
  heartbeatAgeMs: z.number(),
  subtasks: z.array(
    z.object({
      jobId: z.string(),
      attempt: z.number(),
      vertexId: z.string(),
      index: z.number(),
      parallelism: z.number(),
      since: z.number(),
      /** The cores it was placed by: its chain's CPU in the attempt before a recovery, per subtask (absent: placed by count). */
      cost: z.number().optional(),
    }),
  ),
  /** The user operators the worker loaded (KEYFLOW_OPERATORS), as `<type>@<content hash>`: it runs only those versions. */
  operators: z.array(z.string()).default([]),
});
export const sampleSchema = z.object({ at: z.number(), record: z.unknown() });
export const deadLetterSchema = z.object({ at: z.number(), reason: z.string(), record: z.unknown() });

/** INTERRUPTED: a recovery came first; the job goes on to the parallelism asked for once it runs again (a new event). */
export const scalingStatusSchema = z.enum(['QUEUED', 'WAITING_FOR_SLOTS', 'ALIGNING', 'COMPLETED', 'ROLLED_BACK', 'FAILED', 'INTERRUPTED']);
/** One live rescale: its phases (requested → new subtasks started → barrier aligned → snapshot → state restored → running). */
export const scalingEventSchema = z.object({
  id: z.number(),
  jobId: z.string(),
  vertexId: z.string(),
  chainVertices: z.array(z.string()),
  fromParallelism: z.number(),
  toParallelism: z.number(),
  status: scalingStatusSchema,
  requestedAt: z.string(),
  subtasksStartedAt: z.string().nullable(),
  alignedAt: z.string().nullable(),
  snapshottedAt: z.string().nullable(),
  restoredAt: z.string().nullable(),
  runningAt: z.string().nullable(),
  /** The rescale checkpoint: its id (unique across jobs) and its number within the job, as the Checkpoints tab shows it. */
  checkpointId: z.number().nullable(),
  checkpointNumber: z.number().nullable(),
  keyGroupsMoved: z.number(),
  bytesMoved: z.number(),
  pauseMs: z.number().nullable(),
  reason: z.string().nullable(),
  /** The scaling event a recovery interrupted that this one carries out. */
  resumesId: z.number().nullable(),
});
export const recoveryStatusSchema = z.enum(['RESTORING', 'RUNNING', 'FAILED', 'SUPERSEDED']);
/**
 * One recovery of a job (DESIGN §7): what failed, when it happened and when the control plane noticed, which
 * checkpoint the new attempt restarted from, and when every subtask ran again. RESTORING until then; FAILED when
 * the job gave up; SUPERSEDED when another failure started a further recovery first.
 */
export const recoverySchema = z.object({
  id: z.number(),
  jobId: z.string(),
  /** The attempt the recovery started. */
  attempt: z.number(),
  cause: z.string(),
  /** When the failure happened, as far as known (a lost worker's last heartbeat; a subtask's failure report). */
  failedAt: z.string().nullable(),
  detectedAt: z.string(),
  checkpointId: z.number().nullable(),
  checkpointNumber: z.number().nullable(),
  runningAt: z.string().nullable(),
  /** failedAt → detectedAt. */
  detectionMs: z.number().nullable(),
  /** detectedAt → runningAt: stopping the old attempt, backoff, scheduling and restoring state. */
  recoveryMs: z.number().nullable(),
  /** The longest state load of one subtask. */
  restoreMs: z.number().nullable(),
  keyGroupsRestored: z.number(),
  bytesRestored: z.number(),
  status: recoveryStatusSchema,
  reason: z.string().nullable(),
});
export type Recovery = z.infer<typeof recoverySchema>;

/** Who owns which key groups of a keyed operator, and the records each key group saw (skew shows here). */
export const keyGroupViewSchema = z.object({
  vertexId: z.string(),
  maxParallelism: z.number(),
  parallelism: z.number(),
  subtasks: z.array(z.object({ index: z.number(), start: z.number(), end: z.number(), records: z.number() })),
  /** Records per key group, index = key group. */
  records: z.array(z.number()),
});
export type KeyGroupView = z.infer<typeof keyGroupViewSchema>;

export const rescaleJobBody = z
  .object({
    /** New parallelism per operator id; each becomes one scaling event, run in order. */
    parallelism: z.record(z.string().min(1).max(64), z.number().int()).refine((p) => Object.keys(p).length > 0, 'name at least one operator'),
  })
  .strict();

export const apiErrorSchema = z.object({
  error: z.string(),
  message: z.string(),
  issues: z.array(graphIssueSchema).optional(),
});

export type Pipeline = z.infer<typeof pipelineSchema>;
export type PipelineVersion = z.infer<typeof pipelineVersionSchema>;
export type Job = z.infer<typeof jobSchema>;
export type JobDetail = z.infer<typeof jobDetailSchema>;
export type CheckpointFailures = z.infer<typeof checkpointFailuresSchema>;
export type JobEvent = z.infer<typeof jobEventSchema>;
export type JobMetrics = z.infer<typeof jobMetricsSchema>;
export type Checkpoint = z.infer<typeof checkpointSchema>;
export type CheckpointAck = z.infer<typeof checkpointAckSchema>;
export type CheckpointDetail = z.infer<typeof checkpointDetailSchema>;
export type WorkerInfo = z.infer<typeof workerSchema>;
export type ApiError = z.infer<typeof apiErrorSchema>;
export type ScalingEvent = z.infer<typeof scalingEventSchema>;
export type RescaleJobBody = z.infer<typeof rescaleJobBody>;
export type CreatePipelineBody = z.infer<typeof createPipelineBody>;
export type DeployJobBody = z.infer<typeof deployJobBody>;

/** POST /api/ingest/:sourceName: the name of a running job's HTTP source. */
export const ingestParams = z.object({ sourceName: httpSourceSettings.shape.name }).strict();
/** What an ingest request took: all its records, durably in the source's log (202). */
export const ingestResultSchema = z.object({ accepted: z.number().int() });
export type IngestResult = z.infer<typeof ingestResultSchema>;
