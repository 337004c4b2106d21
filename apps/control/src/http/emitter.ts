import { jobRoom, type ServerEventName, type ServerEventPayload, type ServerToClientEvents } from '@keyflow/api';
import type { Server } from 'socket.io';

/** Room every client joins: job list changes. */
export const JOBS_ROOM = 'jobs';

/** Sends control events to the job's Socket.IO room (and state changes to everyone watching the job list). */
export class Emitter {
  constructor(
    private readonly io: Server<never, ServerToClientEvents> | undefined,
    /** Sees every event sent (the Prometheus metrics count checkpoints, rescales and recoveries from them). */
    private readonly observe: <E extends ServerEventName>(event: E, payload: ServerEventPayload<E>) => void = () => {},
  ) {}

  emit<E extends ServerEventName>(jobId: string, event: E, payload: ServerEventPayload<E>): void {
    this.observe(event, payload);
    // Socket.IO's typed emit cannot narrow a generic event name; the payload type is checked above.
    (this.io?.to(jobRoom(jobId)) as { emit(e: string, p: unknown): void } | undefined)?.emit(event, payload);
  }

  jobState(payload: ServerEventPayload<'job:state'>): void {
    this.observe('job:state', payload);
    this.io?.to([jobRoom(payload.jobId), JOBS_ROOM]).emit('job:state', payload);
  }

  /** A stall is news for the job list too, as a state change is. */
  jobStall(payload: ServerEventPayload<'job:stall'>): void {
    this.observe('job:stall', payload);
    this.io?.to([jobRoom(payload.jobId), JOBS_ROOM]).emit('job:stall', payload);
  }
}
