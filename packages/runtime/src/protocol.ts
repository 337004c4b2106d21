import { jobPlanSchema } from '@keyflow/core';
import { z } from 'zod';

// What crosses Redis between the control plane and the workers: task data, commands and worker events. Each is a
// zod schema, so whatever reads one from Redis validates it rather than trusting a cast.

/** A subtask to run: one BullMQ task job (DESIGN §4). `vertexId` is the head of the subtask's chain. */
export const taskDataSchema = z.object({
  jobId: z.string().min(1),
  attempt: z.number().int().min(1),
  vertexId: z.string().min(1),
  index: z.number().int().min(0),
  parallelism: z.number().int().min(1),
  /** A completed checkpoint's id to restore state and source offsets from. */
  restoreFrom: z.number().int().optional(),
  /** The plan to run with, when it is not yet the job's stored plan (a subtask started by a rescale). */
  plan: jobPlanSchema.optional(),
  /** Started by this rescale: waits for the old owners to hand over its key groups and splits (handover.ts). */
  joinRescale: z.number().int().optional(),
  /** Read the job's commands after this stream id: a rescale's new subtask must see a rollback sent before it started. */
  commandsAfter: z.string().optional(),
  /**
   * What the subtask is expected to use, in thousandths of a core: its chain's CPU in the attempt before (a
   * recovery), shared evenly among the chain's subtasks. Placement balances these across workers; absent, it spreads
   * each operator's subtasks by count.
   */
  cost: z.number().int().min(0).optional(),
});
export type TaskData = z.infer<typeof taskDataSchema>;

/** A live rescale of one chain (DESIGN §6), carried by its checkpoint's trigger, barrier and completion. */
export const rescaleSpecSchema = z.object({
  scalingId: z.number().int(),
  chainId: z.string().min(1),
  parallelism: z.number().int().min(1),
});
export type RescaleSpec = z.infer<typeof rescaleSpecSchema>;

export const checkpointKindSchema = z.enum(['PERIODIC', 'MANUAL', 'SAVEPOINT', 'RESCALE']);
export type CheckpointKindName = z.infer<typeof checkpointKindSchema>;

const attempt = z.number().int().min(1);

/** Control → subtasks, on the attempt's command stream. */
export const commandSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('trigger'),
    attempt,
    checkpoint: z.number().int(),
    checkpointId: z.number().int(),
    kind: checkpointKindSchema,
    stopAfter: z.boolean().optional(),
    rescale: rescaleSpecSchema.optional(),
  }),
  z.object({
    type: z.literal('complete'),
    attempt,
    checkpoint: z.number().int(),
    checkpointId: z.number().int(),
    rescale: rescaleSpecSchema.optional(),
  }),
  z.object({ type: z.literal('rescale-rollback'), attempt, scalingId: z.number().int() }),
  /** The rescale's barrier comes soon: its chain's subtasks start sending the key groups that will leave them. */
  z.object({ type: z.literal('rescale-prepare'), attempt, rescale: rescaleSpecSchema }),
  z.object({ type: z.literal('abort'), attempt, checkpoint: z.number().int(), reason: z.string() }),
  z.object({ type: z.literal('stop'), attempt }),
  z.object({ type: z.literal('cancel'), attempt }),
]);
export type Command = z.infer<typeof commandSchema>;

/**
 * Why a subtask stopped: the control plane's stop or cancel, a rescale that took it away (or rolled back or aborted
 * the one that started it), or none of these (`aborted`: its worker closed). A stop the plan does not explain is a
 * failure of the job.
 */
export const stopCauseSchema = z.enum(['stop', 'cancel', 'scaled-away', 'rolled-back', 'rescale-aborted', 'aborted']);
export type StopCause = z.infer<typeof stopCauseSchema>;

/**
 * Where a subtask stands at the end of a metrics window: what it has to do and what it waits for. The control
 * plane's stall detector follows these to the subtasks that hold a job up.
 */
export const subtaskProgressSchema = z.object({
  /** Entries waiting in its input channels; for a source, 1 while it has events left to emit. */
  backlog: z.number(),
  /**
   * Entries it took from its input channels in the window, of any kind: one whose input brings only watermarks
   * (a window's results are rare while event time runs slowly) moves, though no record goes in or out.
   */
  read: z.number().optional(),
  /** Consumer subtasks (`chainId#index`) whose channel from this one is full right now: it waits for them. */
  blockedOn: z.array(z.string()),
  /** The checkpoint it is aligning on, for how long, and the producers (`chainId#index`) whose barrier it waits for. */
  aligning: z.object({ checkpoint: z.number(), forMs: z.number(), missing: z.array(z.string()) }).optional(),
  /** The newest checkpoint whose barrier it passed on (0: none yet). */
  lastBarrier: z.number(),
  /** Waiting for the state a rescale hands it: a pause the plan makes. */
  restoring: z.boolean().optional(),
  /** Waiting for its sinks to write what they hold (more than their bound), and for how long. */
  sinkWaiting: z.object({ buffered: z.number(), forMs: z.number() }).optional(),
});
export type SubtaskProgress = z.infer<typeof subtaskProgressSchema>;

/** Per operator of a chain: what it did since the last metrics event. */
export const vertexMetricsSchema = z.object({
  recordsIn: z.number(),
  recordsOut: z.number(),
  deadLetters: z.number(),
  /** Records its windows took too late (beyond the allowed lateness). */
  lateRecords: z.number().optional(),
  /** Bytes of state held (keyed operators), as of the last checkpoint. */
  stateBytes: z.number().optional(),
});
export type VertexMetrics = z.infer<typeof vertexMetricsSchema>;

/** How far a source's split is behind its broker: messages (and bytes) not read yet, or the time between. */
export const sourceLagSchema = z.object({
  split: z.number().int(),
  /** The split as the broker names it: a stream key, a subject filter, a topic. */
  name: z.string(),
  messages: z.number().optional(),
  bytes: z.number().optional(),
  /** How far behind in time: the newest message's time minus the last emitted one's. */
  ms: z.number().optional(),
});
export type SourceLag = z.infer<typeof sourceLagSchema>;

export const vertexAckSchema = z.object({ bytes: z.number(), keyGroups: z.number() });
export type VertexAck = z.infer<typeof vertexAckSchema>;

/** Which subtask an event is from. */
const subtaskRef = { jobId: z.string(), attempt, vertexId: z.string(), index: z.number().int().min(0) };
export type SubtaskRef = { jobId: string; attempt: number; vertexId: string; index: number };

/** Worker → control, on the events stream. */
export const workerEventSchema = z.discriminatedUnion('type', [
  z.object({
    ...subtaskRef,
    type: z.literal('running'),
    workerId: z.string(),
    restoredBytes: z.number(),
    restoredKeyGroups: z.number(),
    restoreMs: z.number(),
  }),
  z.object({
    ...subtaskRef,
    type: z.literal('ack'),
    checkpoint: z.number().int(),
    checkpointId: z.number().int(),
    alignmentMs: z.number(),
    syncMs: z.number(),
    asyncMs: z.number(),
    vertices: z.record(z.string(), vertexAckSchema),
  }),
  z.object({ ...subtaskRef, type: z.literal('decline'), checkpoint: z.number().int(), checkpointId: z.number().int(), reason: z.string() }),
  z.object({
    ...subtaskRef,
    type: z.literal('rescaled'),
    scalingId: z.number().int(),
    /** Key groups (or source splits) this subtask gained and loaded. */
    keyGroupsLoaded: z.number(),
    bytesLoaded: z.number(),
    restoreMs: z.number(),
    /** Barrier aligned → processing again, for this subtask. */
    pauseMs: z.number(),
    /** When its barrier aligned (epoch ms), for subtasks that were running before the rescale. */
    alignedAt: z.number().optional(),
    /** When it went on with its new range and splits loaded (epoch ms). */
    runningAt: z.number(),
  }),
  /** This subtask sent all its leaving key groups ahead of the rescale's barrier. */
  z.object({ ...subtaskRef, type: z.literal('precopied'), scalingId: z.number().int() }),
  z.object({ ...subtaskRef, type: z.literal('finished') }),
  z.object({ ...subtaskRef, type: z.literal('stopped'), cause: stopCauseSchema, scalingId: z.number().int().optional() }),
  z.object({ ...subtaskRef, type: z.literal('failed'), error: z.string() }),
  z.object({
    ...subtaskRef,
    type: z.literal('metrics'),
    /** Length of the window in ms. */
    windowMs: z.number(),
    /** Share of the window spent waiting on full output channels, 0…1. */
    backpressure: z.number(),
    /** Share of the window neither waiting for input nor on full output channels, 0…1 (absent from older workers). */
    busy: z.number().optional(),
    /** The worker process the subtask runs in and the cores it used over the window, all its subtasks together. */
    worker: z.object({ id: z.string(), cpu: z.number().min(0) }).optional(),
    vertices: z.record(z.string(), vertexMetricsSchema),
    /** Records per key group since the last metrics event, for the keyed operator at the chain's head: [keyGroup, count] pairs. */
    keyGroups: z.record(z.string(), z.array(z.tuple([z.number(), z.number()]))).optional(),
    progress: subtaskProgressSchema.optional(),
    /**
     * Event time: a source's output watermark, any other subtask's input watermark; null when none yet. An ended
     * input's is `END_WATERMARK` (Infinity), which JSON carries as null: `ended` says so.
     */
    watermark: z.number().nullable().optional(),
    watermarkEnded: z.boolean().optional(),
    /** Every input channel (for a source, every split) is idle. */
    idle: z.boolean().optional(),
    /** A source reading a broker: how far behind it each split it holds is. */
    sourceLag: z.array(sourceLagSchema).optional(),
  }),
]);
export type WorkerEvent = z.infer<typeof workerEventSchema>;
export type WorkerEventType = WorkerEvent['type'];

/** A message read from Redis, validated: the parsed value, or why it is not one. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Parses a JSON text with `schema`; never throws. */
export function parseJson<T>(schema: z.ZodType<T>, raw: string | undefined): Parsed<T> {
  let json: unknown;
  try {
    json = JSON.parse(raw ?? '');
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const r = schema.safeParse(json);
  if (r.success) return { ok: true, value: r.data };
  const issue = r.error.issues[0];
  return { ok: false, reason: `${issue?.path.join('.') || 'message'}: ${issue?.message ?? 'invalid'}` };
}
