import { z } from 'zod';
import {
  checkpointAckSchema,
  checkpointFailuresSchema,
  checkpointKindSchema,
  checkpointSchema,
  jobMetricsSchema,
  jobStateSchema,
  recoverySchema,
  scalingEventSchema,
  stallSchema,
} from './rest.ts';

/** Socket.IO events the control plane sends to a job's room (`job:subscribe` with the job id joins it). */
export const serverEvents = {
  'job:state': z.object({
    jobId: z.string(),
    attempt: z.number(),
    from: jobStateSchema.nullable(),
    to: jobStateSchema,
    reason: z.string().nullable(),
    at: z.string(),
  }),
  'checkpoint:triggered': z.object({
    jobId: z.string(),
    checkpointId: z.number(),
    number: z.number(),
    kind: checkpointKindSchema,
    totalSubtasks: z.number(),
    at: z.string(),
  }),
  'checkpoint:ack': checkpointAckSchema.extend({
    jobId: z.string(),
    checkpointId: z.number(),
    number: z.number(),
    acknowledged: z.number(),
    totalSubtasks: z.number(),
  }),
  'checkpoint:completed': checkpointSchema,
  'checkpoint:failed': checkpointSchema,
  /** A checkpoint failed (or could not even start) or one completed again: the job's count of failures in a row. */
  'checkpoint:failures': checkpointFailuresSchema,
  'job:metrics': jobMetricsSchema,
  /** A scaling event changed phase or status. */
  'scaling:event': scalingEventSchema,
  /** A recovery started, ran again, failed or was superseded. */
  'job:recovery': recoverySchema,
  /** The job stalled (who holds it up), the culprits changed, or it moves again (`stall: null`). */
  'job:stall': z.object({ jobId: z.string(), stall: stallSchema.nullable() }),
  /** The parallelism the job converges to changed (a rescale was asked for, or one was rolled back). */
  'job:desired': z.object({ jobId: z.string(), desiredParallelism: z.record(z.string(), z.number()) }),
} as const;

export type ServerEventName = keyof typeof serverEvents;
export type ServerEventPayload<E extends ServerEventName> = z.infer<(typeof serverEvents)[E]>;

export type ServerToClientEvents = { [E in ServerEventName]: (payload: ServerEventPayload<E>) => void };
export interface ClientToServerEvents {
  'job:subscribe': (jobId: string, ack?: (ok: boolean) => void) => void;
  'job:unsubscribe': (jobId: string) => void;
}

export const jobRoom = (jobId: string) => `job:${jobId}`;
