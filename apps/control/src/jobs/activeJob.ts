import { buildChains, ownClockVertices, parsePlan, validateGraph, type Chain, type Graph, type JobPlan } from '@keyflow/core';
import type { Stall } from '@keyflow/api';
import type { CheckpointKind, Job, JobState, PipelineVersion } from '@keyflow/db';
import type { RescaleSpec } from '@keyflow/runtime';
import { JobActor } from './jobActor.ts';

/** A checkpoint the coordinator waits on. */
export interface PendingCheckpoint {
  id: number;
  number: number;
  kind: CheckpointKind;
  triggeredAt: number;
  /** Chain subtasks (`chainId#index`) that have not acknowledged yet. */
  waiting: Set<string>;
  acknowledged: number;
  totalSubtasks: number;
  bytes: number;
  alignmentMs: number;
  timer: NodeJS.Timeout;
  /** The rescale this checkpoint carries, if it is one. */
  rescale?: RescaleSpec;
  /** Called once the checkpoint completed or failed, for everyone waiting on it. */
  settle: ((result: { ok: true } | { ok: false; reason: string }) => void)[];
}

/**
 * What the control plane keeps in memory about a job it coordinates. Only steps of its actor change it (see
 * JobActor): its fields are state, not locks.
 */
export interface ActiveJob {
  id: string;
  actor: JobActor;
  attempt: number;
  state: JobState;
  graph: Graph;
  /** The operators whose event time is a generated source's own clock (see ownClockVertices): the graph's, for good. */
  ownClock: ReadonlySet<string>;
  plan: JobPlan;
  chains: Chain[];
  /** Every chain subtask of the current attempt, as `chainId#index`. */
  subtasks: string[];
  running: Set<string>;
  finished: Set<string>;
  /** What the current attempt's subtasks restored, summed from their `running` events. */
  restored: { keyGroups: number; bytes: number; ms: number };
  checkpointIntervalMs: number;
  checkpointTimeoutMs: number;
  lastCheckpointAt: number;
  /** Checkpoints failed in a row, and what the job tolerates before it fails over. */
  checkpointFailures: number;
  tolerableCheckpointFailures: number;
  lastCheckpointFailure?: string;
  /** Too many checkpoints failed: the job fails over as soon as it can (Postgres may be unreachable). */
  failoverDue?: string;
  pending?: PendingCheckpoint;
  /** The rescale whose checkpoint completed last: its subtasks taken away may report their stop after that. */
  lastRescale?: RescaleSpec;
  /** A rescale holds the job: no periodic checkpoint may start (the rescale's own checkpoint must be next). */
  rescaling: boolean;
  /** When the current attempt's subtasks were put on the task queue (undefined until they are). */
  enqueuedAt?: number;
  /** Which worker's heartbeat lists each subtask of a starting attempt: taken, though perhaps not running yet. */
  takenBy: Map<string, string>;
  /** When a worker last reported each running subtask in a heartbeat (failure detection). */
  lastSeen: Map<string, number>;
  /** Who holds the job up, while it does not move (see StallDetector). */
  stall?: Stall;
  /** The parallelism per operator asked for last; the job converges to it (see ScalingCoordinator). */
  desired: Record<string, number>;
  /** The job whose checkpoint this one was deployed from, if any (its retention may keep that checkpoint for this job). */
  restoredFromJobId?: string;
}

export const subtaskKey = (chainId: string, index: number) => `${chainId}#${index}`;

/** Every subtask of the job's chains. */
const subtasksOfChains = (chains: readonly Chain[]) => chains.flatMap((c) => Array.from({ length: c.parallelism }, (_, i) => subtaskKey(c.id, i)));

/** The job runs by `plan` from here: its chains and subtasks follow. Returns the subtasks it no longer has (a chain that went down). */
export function adoptPlan(job: ActiveJob, plan: JobPlan): { chainId: string; index: number; vertexIds: string[] }[] {
  const gone = job.chains.flatMap((c) =>
    Array.from({ length: Math.max(0, c.parallelism - plan.vertices[c.id]!.parallelism) }, (_, k) => ({
      chainId: c.id,
      index: plan.vertices[c.id]!.parallelism + k,
      vertexIds: c.vertices.map((v) => v.id),
    })),
  );
  job.plan = plan;
  job.chains = buildChains(job.graph, plan);
  job.subtasks = subtasksOfChains(job.chains);
  return gone;
}

export function activeJobOf(job: Job & { pipelineVersion: PipelineVersion }): ActiveJob {
  const valid = validateGraph(job.pipelineVersion.graph);
  if (!valid.ok) throw new Error(`job ${job.id}: stored graph is invalid: ${valid.issues[0]?.message}`);
  const plan = parsePlan(job.plan);
  const chains = buildChains(valid.graph, plan);
  return {
    id: job.id,
    actor: new JobActor(),
    attempt: job.attempt,
    state: job.state,
    graph: valid.graph,
    ownClock: ownClockVertices(valid.graph),
    plan,
    chains,
    subtasks: subtasksOfChains(chains),
    running: new Set(),
    finished: new Set(),
    restored: { keyGroups: 0, bytes: 0, ms: 0 },
    checkpointIntervalMs: job.checkpointIntervalMs,
    checkpointTimeoutMs: job.checkpointTimeoutMs,
    lastCheckpointAt: Date.now(),
    checkpointFailures: 0,
    tolerableCheckpointFailures: job.tolerableCheckpointFailures,
    lastSeen: new Map(),
    takenBy: new Map(),
    rescaling: false,
    desired: desiredOf(job.desiredParallelism, plan),
    ...(job.restoredFromJobId !== null && { restoredFromJobId: job.restoredFromJobId }),
  };
}

/** The parallelism each operator converges to: what was asked for, else what the plan has. */
export function desiredOf(stored: unknown, plan: JobPlan): Record<string, number> {
  const asked = stored && typeof stored === 'object' ? (stored as Record<string, unknown>) : {};
  return Object.fromEntries(
    Object.entries(plan.vertices).map(([id, v]) => {
      const p = asked[id];
      return [id, typeof p === 'number' && Number.isInteger(p) && p >= 1 ? p : v.parallelism];
    }),
  );
}

/** Operator subtasks a checkpoint acknowledges: every vertex × its parallelism. */
export function operatorSubtasks(job: ActiveJob): number {
  return job.chains.reduce((n, c) => n + c.vertices.length * c.parallelism, 0);
}
