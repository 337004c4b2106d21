import type { JobPlan } from '@keyflow/core';

/** A subtask to run: one BullMQ task job (DESIGN §4). `vertexId` is the head of the subtask's chain. */
export interface TaskData {
  jobId: string;
  attempt: number;
  vertexId: string;
  index: number;
  parallelism: number;
  /** A completed checkpoint's id to restore state and source offsets from. */
  restoreFrom?: number;
  /** The plan to run with, when it is not yet the job's stored plan (a subtask started by a rescale). */
  plan?: JobPlan;
  /** Started by this rescale: waits for the old owners to hand over its key groups and splits (handover.ts). */
  joinRescale?: number;
  /** Read the job's commands after this stream id: a rescale's new subtask must see a rollback sent before it started. */
  commandsAfter?: string;
}

/** A live rescale of one chain (DESIGN §6), carried by its checkpoint's trigger, barrier and completion. */
export interface RescaleSpec {
  scalingId: number;
  chainId: string;
  parallelism: number;
}

export type CheckpointKindName = 'PERIODIC' | 'MANUAL' | 'SAVEPOINT' | 'RESCALE';

/**
 * Why a subtask stopped: the control plane's stop or cancel, a rescale that took it away (or rolled back or aborted
 * the one that started it), or none of these (`aborted`: its worker closed). A stop the plan does not explain is a
 * failure of the job.
 */
export type StopCause = 'stop' | 'cancel' | 'scaled-away' | 'rolled-back' | 'rescale-aborted' | 'aborted';

/**
 * Where a subtask stands at the end of a metrics window: what it has to do and what it waits for. The control
 * plane's stall detector follows these to the subtasks that hold a job up.
 */
export interface SubtaskProgress {
  /** Entries waiting in its input channels; for a source, 1 while it has events left to emit. */
  backlog: number;
  /** Consumer subtasks (`chainId#index`) whose channel from this one is full right now: it waits for them. */
  blockedOn: string[];
  /** The checkpoint it is aligning on, for how long, and the producers (`chainId#index`) whose barrier it waits for. */
  aligning?: { checkpoint: number; forMs: number; missing: string[] };
  /** The newest checkpoint whose barrier it passed on (0: none yet). */
  lastBarrier: number;
  /** Waiting for the state a rescale hands it: a pause the plan makes. */
  restoring?: boolean;
}

/** Control → subtasks, on the job's command stream. Subtasks of another attempt ignore them. */
export type Command =
  | {
      type: 'trigger';
      attempt: number;
      checkpoint: number;
      checkpointId: number;
      kind: CheckpointKindName;
      stopAfter?: boolean;
      rescale?: RescaleSpec;
    }
  | { type: 'complete'; attempt: number; checkpoint: number; checkpointId: number; rescale?: RescaleSpec }
  | { type: 'rescale-rollback'; attempt: number; scalingId: number }
  /** The rescale's barrier comes soon: its chain's subtasks start sending the key groups that will leave them. */
  | { type: 'rescale-prepare'; attempt: number; rescale: RescaleSpec }
  | { type: 'abort'; attempt: number; checkpoint: number; reason: string }
  | { type: 'stop'; attempt: number }
  | { type: 'cancel'; attempt: number };

/** Which subtask an event is from. */
export interface SubtaskRef {
  jobId: string;
  attempt: number;
  vertexId: string;
  index: number;
}

/** Per operator of a chain: what it did since the last metrics event. */
export interface VertexMetrics {
  recordsIn: number;
  recordsOut: number;
  deadLetters: number;
  /** Bytes of state held (keyed operators), as of the last checkpoint. */
  stateBytes?: number;
}

export interface VertexAck {
  bytes: number;
  keyGroups: number;
}

/** Worker → control, on the events stream. */
export type WorkerEvent =
  | (SubtaskRef & { type: 'running'; workerId: string; restoredBytes: number; restoredKeyGroups: number; restoreMs: number })
  | (SubtaskRef & {
      type: 'ack';
      checkpoint: number;
      checkpointId: number;
      alignmentMs: number;
      syncMs: number;
      asyncMs: number;
      vertices: Record<string, VertexAck>;
    })
  | (SubtaskRef & { type: 'decline'; checkpoint: number; checkpointId: number; reason: string })
  | (SubtaskRef & {
      type: 'rescaled';
      scalingId: number;
      /** Key groups (or source splits) this subtask gained and loaded. */
      keyGroupsLoaded: number;
      bytesLoaded: number;
      restoreMs: number;
      /** Barrier aligned → processing again, for this subtask. */
      pauseMs: number;
      /** When its barrier aligned (epoch ms), for subtasks that were running before the rescale. */
      alignedAt?: number;
      /** When it went on with its new range and splits loaded (epoch ms). */
      runningAt: number;
    })
  /** This subtask sent all its leaving key groups ahead of the rescale's barrier. */
  | (SubtaskRef & { type: 'precopied'; scalingId: number })
  | (SubtaskRef & { type: 'finished' })
  | (SubtaskRef & { type: 'stopped'; cause: StopCause; scalingId?: number })
  | (SubtaskRef & { type: 'failed'; error: string })
  | (SubtaskRef & {
      type: 'metrics';
      /** Length of the window in ms. */
      windowMs: number;
      /** Share of the window spent waiting on full output channels, 0…1. */
      backpressure: number;
      vertices: Record<string, VertexMetrics>;
      /** Records per key group since the last metrics event, for the keyed operator at the chain's head: [keyGroup, count] pairs. */
      keyGroups?: Record<string, [number, number][]>;
      progress?: SubtaskProgress;
    });

export type WorkerEventType = WorkerEvent['type'];
