import type { Recovery } from '@keyflow/api';
import { checkpointName } from './checkpointName';

// How a recovery (DESIGN §7) reads on the job page: failed → detected → running again, the checkpoint it
// restarted from, and its status in words.

type Status = Recovery['status'];

/** Milliseconds from one ISO time to another, or null when either is unknown. */
const between = (from: string | null, to: string | null) => (from && to ? Math.max(0, Date.parse(to) - Date.parse(from)) : null);

export interface RecoveryTimings {
  /** failedAt → detectedAt: how long the failure went unnoticed. */
  detectionMs: number | null;
  /** detectedAt → runningAt: stopping the old attempt, backoff, scheduling, restoring; null while not running again. */
  recoveryMs: number | null;
  /** The longest state load of one subtask. */
  restoreMs: number | null;
}

/** The recovery's durations: the server's when it sent them, else worked out from its times. */
export function recoveryTimings(r: Recovery): RecoveryTimings {
  return {
    detectionMs: r.detectionMs ?? between(r.failedAt, r.detectedAt),
    recoveryMs: r.recoveryMs ?? between(r.detectedAt, r.runningAt),
    restoreMs: r.restoreMs,
  };
}

export interface RecoveryPhase {
  label: string;
  /** When it happened (ISO), or null while it has not (or is not known). */
  at: string | null;
  /** Milliseconds since the phase before it, or null. */
  afterMs: number | null;
}

/** The three phases of a recovery, each timed from the one before. */
export function recoveryPhases(r: Recovery): RecoveryPhase[] {
  const t = recoveryTimings(r);
  return [
    { label: 'failed', at: r.failedAt, afterMs: null },
    { label: 'detected', at: r.detectedAt, afterMs: t.detectionMs },
    { label: 'running again', at: r.runningAt, afterMs: t.recoveryMs },
  ];
}

/** The checkpoint of another job that a job was deployed from (what it restarts from until it has one of its own). */
export interface StartedFrom {
  checkpointId: number;
  jobId: string;
  number: number;
}

/** Which state the new attempt started from; numbers are the job's own, unless it is the other job's it started from. */
export function recoveryCheckpoint(r: Pick<Recovery, 'checkpointId' | 'checkpointNumber'>, startedFrom?: StartedFrom): string {
  if (startedFrom && r.checkpointId === startedFrom.checkpointId)
    return `checkpoint #${startedFrom.number} of job ${startedFrom.jobId.slice(0, 8)}, which it started from`;
  return checkpointName(r) ?? 'no checkpoint: from the start';
}

const STATUS_TEXT: Record<Status, string> = {
  RESTORING: 'restarting from its checkpoint',
  RUNNING: 'every subtask runs again',
  FAILED: 'the job gave up: restarts used up',
  SUPERSEDED: 'another failure started a further recovery first',
};
export const recoveryStatusText = (status: Status) => STATUS_TEXT[status];

/** The badge tone (globals.css `.badge-*`) of a recovery's status. */
export const recoveryTone = (status: Status) =>
  status === 'RUNNING' ? 'ok' : status === 'FAILED' ? 'bad' : status === 'RESTORING' ? 'warn' : 'neutral';
