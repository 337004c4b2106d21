import type { ScalingEvent } from '@keyflow/api';
import { buildChains, chainOf, graphSchema, type JobPlan } from '@keyflow/core';
import { SCALING_SETTLED } from '../../lib/liveCache';

// How a live rescale (DESIGN.md §6) reads on the job page: its phases, its status in words, and which
// rescale an operator is waiting for.

type Status = ScalingEvent['status'];

/** The phases of one rescale, in their usual order, with the field that records each one's time. */
export const SCALING_PHASES = [
  { key: 'requestedAt', label: 'requested' },
  { key: 'subtasksStartedAt', label: 'new subtasks started' },
  { key: 'alignedAt', label: 'barrier aligned' },
  // Moved state is handed over directly at the barrier, so new owners usually run before the checkpoint is written.
  { key: 'restoredAt', label: 'state restored' },
  { key: 'snapshottedAt', label: 'checkpoint completed' },
  { key: 'runningAt', label: 'running' },
] as const satisfies readonly { key: keyof ScalingEvent; label: string }[];

/** The Rescales card's legend: the very phases each rescale lists. */
export const PHASE_LEGEND = SCALING_PHASES.map((p) => p.label).join(' → ');

export interface PhaseStep {
  label: string;
  /** When it happened (ISO), or null while it has not (or never will). */
  at: string | null;
  /** Milliseconds since the request, or null. */
  sinceRequestMs: number | null;
}

/**
 * Every phase of a rescale with its time relative to the request: the reached ones in the order they happened
 * (the last new owner can go on before the last barrier is aligned or the checkpoint completes), then the others
 * in their usual order.
 */
export function scalingPhases(e: ScalingEvent): PhaseStep[] {
  const requested = Date.parse(e.requestedAt);
  // A rescale down starts no subtasks: it has no such phase.
  const phases = SCALING_PHASES.filter((p) => p.key !== 'subtasksStartedAt' || e.toParallelism > e.fromParallelism);
  const steps = phases.map(({ key, label }, order) => ({ label, at: e[key], order }));
  const time = (s: (typeof steps)[number]) => (s.order === 0 ? -Infinity : Date.parse(s.at!));
  const reached = steps.filter((s) => s.at !== null).sort((a, b) => time(a) - time(b) || a.order - b.order);
  return [...reached, ...steps.filter((s) => s.at === null)].map(({ label, at }) => ({
    label,
    at,
    // The request comes first even if another clock says otherwise: no phase shows a time before it.
    sinceRequestMs: at === null ? null : Math.max(0, Date.parse(at) - requested),
  }));
}

/** The latest phase a rescale reached. */
export function currentPhase(e: ScalingEvent): string {
  const reached = scalingPhases(e).filter((p) => p.at !== null);
  return reached[reached.length - 1]?.label ?? 'requested';
}

export const isScalingInFlight = (status: Status) => !SCALING_SETTLED.has(status);

const STATUS_TEXT: Record<Status, string> = {
  QUEUED: 'queued',
  WAITING_FOR_SLOTS: 'waiting for free slots',
  ALIGNING: 'rolling out',
  COMPLETED: 'completed',
  ROLLED_BACK: 'rolled back',
  FAILED: 'failed',
  INTERRUPTED: 'interrupted by a recovery',
};

/** How a settled rescale ended, with its reason: "rolled back: waited 30000 ms for 2 free worker slots; 0 of the new subtasks started". */
export function scalingOutcome(e: Pick<ScalingEvent, 'status' | 'reason'>): string {
  const status = STATUS_TEXT[e.status];
  if (!e.reason) return status;
  // The control plane's reasons may already say it ("rolled back: waited …").
  return e.reason.toLowerCase().startsWith(status) ? e.reason : `${status}: ${e.reason}`;
}

/** A rescale in a few words: "×1 → ×2 · rolling out: barrier aligned". */
export function describeScaling(e: ScalingEvent): string {
  const change = `×${e.fromParallelism} → ×${e.toParallelism}`;
  if (e.status === 'ALIGNING') return `${change} · rolling out: ${currentPhase(e)}`;
  return `${change} · ${STATUS_TEXT[e.status]}`;
}

type ScalingTone = 'ok' | 'bad' | 'warn' | 'busy';
export const statusTone = (status: Status): ScalingTone =>
  status === 'COMPLETED' ? 'ok' : status === 'FAILED' || status === 'ROLLED_BACK' ? 'bad' : status === 'INTERRUPTED' ? 'warn' : 'busy';

/** The scaling event a resumed one carries on (one a recovery interrupted), if any. */
export const resumedEventId = (e: Pick<ScalingEvent, 'resumesId'>): number | undefined => e.resumesId ?? undefined;

/** Whether a rescale moves this operator (it, or the forward chain it belongs to). */
export const scalesVertex = (e: ScalingEvent, vertexId: string) => e.vertexId === vertexId || e.chainVertices.includes(vertexId);

export interface OperatorScaling {
  /** The rescale of this operator still under way (queued or rolling out), the oldest first. */
  mine: ScalingEvent | undefined;
  /** Rescales of the job ahead of a new request: it would queue behind them. */
  inFlight: number;
  /** The most recent settled rescale of this operator, if it did not complete (its reason shows on the node). */
  lastProblem: ScalingEvent | undefined;
}

/** What an operator's slider shows, from the job's scaling events (newest first). */
export function operatorScaling(events: readonly ScalingEvent[], vertexId: string): OperatorScaling {
  const pending = events.filter((e) => isScalingInFlight(e.status));
  const mine = pending.filter((e) => scalesVertex(e, vertexId)).sort((a, b) => a.id - b.id)[0];
  const latestSettled = events.find((e) => scalesVertex(e, vertexId) && !isScalingInFlight(e.status));
  return {
    mine,
    inFlight: pending.length,
    lastProblem: latestSettled && latestSettled.status !== 'COMPLETED' && !mine ? latestSettled : undefined,
  };
}

/** The subtask that owns each key group (index = key group), from its ranges (inclusive ends). */
export function keyGroupOwners(subtasks: readonly { index: number; start: number; end: number }[], maxParallelism: number): number[] {
  const owners = new Array<number>(maxParallelism).fill(-1);
  for (const s of subtasks) for (let g = Math.max(0, s.start); g <= Math.min(s.end, maxParallelism - 1); g++) owners[g] = s.index;
  return owners;
}

/** The subtask's colour: the same index is the same colour on every chart. */
export const SUBTASK_COLORS = ['#2f6fde', '#e8833a', '#2e9e6b', '#b54bc4', '#d4a017', '#cc3d4b', '#4aa3b5', '#7a6a58'];
export const subtaskColor = (index: number) => (index < 0 ? '#c9d1da' : SUBTASK_COLORS[index % SUBTASK_COLORS.length]!);

export interface SliderLimits {
  /** The most the slider allows: the smallest maxParallelism of the operator's chain, as the control plane checks. */
  max: number;
  /** The operators rescaled with it (its forward chain), itself first. */
  chain: string[];
  /** Why it cannot be rescaled at all (a forward edge to another chain), or undefined. */
  blocked?: string;
}

/** What an operator's slider may do, from the job's graph and plan (core's chains, the same the control plane uses). */
export function sliderLimits(graph: unknown, plan: JobPlan, vertexId: string): SliderLimits | undefined {
  const parsed = graphSchema.safeParse(graph);
  const own = plan.vertices[vertexId];
  if (!own) return undefined;
  const chain = parsed.success ? chainOf(buildChains(parsed.data, plan), vertexId) : undefined;
  if (!parsed.success || !chain) return { max: own.maxParallelism, chain: [vertexId] };
  const ids = new Set(chain.vertices.map((v) => v.id));
  const max = Math.min(...chain.vertices.map((v) => plan.vertices[v.id]?.maxParallelism ?? own.maxParallelism));
  const forward = parsed.data.edges.find((e) => e.partitioning === 'forward' && ids.has(e.from) !== ids.has(e.to));
  const other = forward && (ids.has(forward.from) ? forward.to : forward.from);
  return {
    max,
    chain: [vertexId, ...[...ids].filter((id) => id !== vertexId)],
    ...(other && { blocked: `joined to ${other} by a forward edge, which needs equal parallelism on both ends` }),
  };
}
