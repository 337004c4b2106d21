import {
  isTerminal,
  type Checkpoint,
  type CheckpointDetail,
  type Job,
  type JobDetail,
  type ServerEventName,
  type ServerEventPayload,
} from '@keyflow/api';
import type { QueryClient } from '@tanstack/react-query';
import { queryKeys } from './api';

// Pure functions that fold one Socket.IO event into cached REST data. Each returns the same object when the
// event changes nothing, so TanStack Query does not re-render for it.

type StateEvent = ServerEventPayload<'job:state'>;
type TriggeredEvent = ServerEventPayload<'checkpoint:triggered'>;
type AckEvent = ServerEventPayload<'checkpoint:ack'>;
type MetricsEvent = ServerEventPayload<'job:metrics'>;
type ScalingEvent = ServerEventPayload<'scaling:event'>;
type RecoveryEvent = ServerEventPayload<'job:recovery'>;
type StallEvent = ServerEventPayload<'job:stall'>;
type DesiredEvent = ServerEventPayload<'job:desired'>;

/** A job (list row or detail) after a lifecycle transition. */
export function withJobState<J extends Job>(job: J, e: StateEvent): J {
  if (job.id !== e.jobId) return job;
  if (job.state === e.to && job.attempt === e.attempt) return job;
  return {
    ...job,
    state: e.to,
    attempt: e.attempt,
    updatedAt: e.at,
    ...(isTerminal(e.to) && { endedAt: job.endedAt ?? e.at }),
    ...(e.to === 'FAILED' && { failureReason: e.reason ?? job.failureReason }),
  };
}

/** The job list after a transition; `undefined` when the job is not in it (the list must be fetched again). */
export function jobsWithState(jobs: Job[], e: StateEvent): Job[] | undefined {
  const index = jobs.findIndex((j) => j.id === e.jobId);
  if (index < 0) return undefined;
  const next = withJobState(jobs[index]!, e);
  if (next === jobs[index]) return jobs;
  return jobs.map((j, i) => (i === index ? next : j));
}

/** The job list with one job changed by `f`; the same list when the job is not in it or `f` changed nothing. */
export function jobsWith(jobs: Job[], jobId: string, f: (job: Job) => Job): Job[] {
  const index = jobs.findIndex((j) => j.id === jobId);
  const next = index < 0 ? undefined : f(jobs[index]!);
  return next === undefined || next === jobs[index] ? jobs : jobs.map((j, i) => (i === index ? next : j));
}

/** A job (list row or detail) after `job:stall`: who holds it up now, or nobody. */
export function withStall<J extends Job>(job: J, e: StallEvent): J {
  if (job.id !== e.jobId || JSON.stringify(job.stall) === JSON.stringify(e.stall)) return job;
  return { ...job, stall: e.stall };
}

/** A job (list row or detail) after `job:desired`: the parallelism it converges to. */
export function withDesired<J extends Job>(job: J, e: DesiredEvent): J {
  if (job.id !== e.jobId || JSON.stringify(job.desiredParallelism) === JSON.stringify(e.desiredParallelism)) return job;
  return { ...job, desiredParallelism: e.desiredParallelism };
}

/** A job's detail after a transition: new state, and the event appended to its lifecycle history once. */
export function jobDetailWithState(job: JobDetail, e: StateEvent): JobDetail {
  if (job.id !== e.jobId) return job;
  const seen = job.events.some((x) => x.at === e.at && x.toState === e.to && x.attempt === e.attempt);
  const moved = withJobState(job, e);
  if (seen && moved === job) return job;
  return {
    ...moved,
    events: seen ? job.events : [...job.events, { at: e.at, attempt: e.attempt, fromState: e.from, toState: e.to, reason: e.reason }],
  };
}

/** A pending checkpoint as `checkpoint:triggered` describes it. */
export function pendingCheckpoint(e: TriggeredEvent, attempt: number): CheckpointDetail {
  return {
    id: e.checkpointId,
    jobId: e.jobId,
    number: e.number,
    attempt,
    kind: e.kind,
    status: 'PENDING',
    acknowledged: 0,
    totalSubtasks: e.totalSubtasks,
    triggeredAt: e.at,
    completedAt: null,
    durationMs: null,
    bytes: 0,
    alignmentMs: null,
    failureReason: null,
    acks: [],
  };
}

/** Newest first, as the API lists them. */
const byNumberDesc = (a: Checkpoint, b: Checkpoint) => b.number - a.number;

/** The checkpoint history after a checkpoint was triggered (added once, pending). */
export function checkpointsWithTriggered(list: CheckpointDetail[], e: TriggeredEvent, attempt: number): CheckpointDetail[] {
  if (list.some((c) => c.id === e.checkpointId)) return list;
  return [pendingCheckpoint(e, attempt), ...list].sort(byNumberDesc);
}

/** The checkpoint history after one subtask acknowledged: its count goes up and the ack is kept for the detail. */
export function checkpointsWithAck(list: CheckpointDetail[], e: AckEvent): CheckpointDetail[] {
  const index = list.findIndex((c) => c.id === e.checkpointId);
  if (index < 0) return list;
  const c = list[index]!;
  if (c.acks.some((a) => a.vertexId === e.vertexId && a.subtaskIndex === e.subtaskIndex)) return list;
  const ack = {
    vertexId: e.vertexId,
    subtaskIndex: e.subtaskIndex,
    ackedAt: e.ackedAt,
    alignmentMs: e.alignmentMs,
    syncMs: e.syncMs,
    asyncMs: e.asyncMs,
    bytes: e.bytes,
  };
  const next: CheckpointDetail = {
    ...c,
    // A late ack never takes a finished checkpoint's count back.
    acknowledged: Math.max(c.acknowledged, e.acknowledged),
    totalSubtasks: e.totalSubtasks,
    bytes: c.status === 'PENDING' ? c.bytes + e.bytes : c.bytes,
    acks: [...c.acks, ack],
  };
  return list.map((x, i) => (i === index ? next : x));
}

/** The checkpoint history after a checkpoint completed or failed: its final row replaces the pending one. */
export function checkpointsWithResult(list: CheckpointDetail[], e: Checkpoint): CheckpointDetail[] {
  const index = list.findIndex((c) => c.id === e.id);
  if (index < 0) return [{ ...e, acks: [] }, ...list].sort(byNumberDesc);
  const c = list[index]!;
  return list.map((x, i) => (i === index ? { ...c, ...e, acks: c.acks } : x));
}

/** The job detail's latest checkpoints (no acks) after any checkpoint event. */
export function latestWithCheckpoint(job: JobDetail, c: Checkpoint): JobDetail {
  if (job.id !== c.jobId) return job;
  const before = job.latestCheckpoints.find((x) => x.id === c.id);
  const others = job.latestCheckpoints.filter((x) => x.id !== c.id);
  const { acks: _acks, ...row } = c as CheckpointDetail;
  return {
    ...job,
    latestCheckpoints: [row, ...others].sort(byNumberDesc).slice(0, 10),
    checkpointCounts: countsWith(job.checkpointCounts, before, c),
  };
}

/** The job's checkpoint counts after one checkpoint was triggered, completed or failed (`before`: as it was known). */
export function countsWith(counts: JobDetail['checkpointCounts'], before: Pick<Checkpoint, 'status'> | undefined, c: Checkpoint) {
  if (before?.status === c.status) return counts;
  const next = { ...counts, triggered: Math.max(counts.triggered, c.number) };
  if (before?.status === 'PENDING') next.inProgress = Math.max(0, next.inProgress - 1);
  if (c.status === 'PENDING') next.inProgress++;
  else if (c.status === 'COMPLETED') next.completed++;
  else if (c.status === 'FAILED') next.failed++;
  return next;
}

/** Scaling statuses after which a rescale changes no more (an interrupted one is carried on by a new event). */
export const SCALING_SETTLED: ReadonlySet<ScalingEvent['status']> = new Set<ScalingEvent['status']>([
  'COMPLETED',
  'ROLLED_BACK',
  'FAILED',
  'INTERRUPTED',
]);

/** How far a rescale has got: its status only ever moves forward. */
const scalingStage = (status: ScalingEvent['status']) =>
  SCALING_SETTLED.has(status) ? 3 : status === 'ALIGNING' ? 2 : status === 'WAITING_FOR_SLOTS' ? 1 : 0;

/** A job's scaling events (newest first) after one changed phase: it replaces its row, or is added. */
export function scalingEventsWith(list: ScalingEvent[], e: ScalingEvent): ScalingEvent[] {
  const index = list.findIndex((x) => x.id === e.id);
  if (index < 0) return [e, ...list].sort((a, b) => b.id - a.id);
  // Answers overtake each other (the socket against a refetch or the rescale request's own answer): a row never
  // goes back to an earlier status.
  if (scalingStage(e.status) < scalingStage(list[index]!.status)) return list;
  return list.map((x, i) => (i === index ? e : x));
}

/** Recovery statuses after which a recovery changes no more. */
export const RECOVERY_SETTLED: ReadonlySet<string> = new Set(['RUNNING', 'FAILED', 'SUPERSEDED']);

/** A job's recoveries (newest first) after one started or settled: it replaces its row, or is added. */
export function recoveriesWith(list: RecoveryEvent[], e: RecoveryEvent): RecoveryEvent[] {
  const index = list.findIndex((x) => x.id === e.id);
  if (index < 0) return [e, ...list].sort((a, b) => b.id - a.id);
  const old = list[index]!;
  // A refetch can answer after a newer event: a settled recovery never goes back to RESTORING.
  if (RECOVERY_SETTLED.has(old.status) && !RECOVERY_SETTLED.has(e.status)) return list;
  return list.map((x, i) => (i === index ? e : x));
}

/** The cached checkpoint lists after a checkpoint (here a savepoint deleted by hand) is gone for good. */
export function withoutCheckpoint<C extends { id: number }>(list: C[], checkpointId: number): C[] {
  return list.some((c) => c.id === checkpointId) ? list.filter((c) => c.id !== checkpointId) : list;
}

export function jobDetailWithMetrics(job: JobDetail, e: MetricsEvent): JobDetail {
  if (job.id !== e.jobId) return job;
  return { ...job, metrics: e };
}

/** The subset of a Socket.IO client the binding needs (so tests can drive it with a plain emitter). */
// Socket.IO types each listener by its event; the binding keeps that pairing itself, in `handlers`.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each listener's payload type is its event's, which one type cannot say
type Listener = (payload: any) => void;
export interface EventSource {
  on(event: ServerEventName, listener: Listener): unknown;
  off(event: ServerEventName, listener: Listener): unknown;
}

/**
 * Applies every server event to the query cache, so pages that read the cache update live. Returns a function
 * that removes the listeners.
 */
export function bindEventsToCache(socket: EventSource, client: QueryClient): () => void {
  const attemptOf = (jobId: string) => client.getQueryData<JobDetail>(queryKeys.job(jobId))?.attempt ?? 1;
  /**
   * Folds an event into a cached query. While that query is being fetched its answer may predate the event,
   * so it is fetched again instead (and a query nobody has asked for is left alone).
   */
  const refetchSoon = new Set<string>();
  /** Fetches a query again once its fetch in flight is done (asking now would only join that fetch). */
  const refetchAfterFetch = (queryKey: readonly unknown[]) => {
    const query = client.getQueryCache().find({ queryKey, exact: true });
    if (!query || refetchSoon.has(query.queryHash)) return;
    refetchSoon.add(query.queryHash);
    const unsubscribe = client.getQueryCache().subscribe((event) => {
      if (event.query !== query || query.state.fetchStatus !== 'idle') return;
      unsubscribe();
      refetchSoon.delete(query.queryHash);
      void client.invalidateQueries({ queryKey, exact: true });
    });
  };
  const update = <T>(queryKey: readonly unknown[], f: (data: T) => T) => {
    const state = client.getQueryState<T>(queryKey);
    if (!state) return;
    if (state.fetchStatus === 'fetching') refetchAfterFetch(queryKey);
    else if (state.data === undefined) void client.invalidateQueries({ queryKey, exact: true });
    else client.setQueryData<T>(queryKey, (data) => (data === undefined ? data : f(data)));
  };
  const updateCheckpoints = (jobId: string, f: (list: CheckpointDetail[]) => CheckpointDetail[]) => update(queryKeys.checkpoints(jobId), f);
  const updateJob = (jobId: string, f: (job: JobDetail) => JobDetail) => update(queryKeys.job(jobId), f);
  const refetchRetained = (jobId: string) => void client.invalidateQueries({ queryKey: queryKeys.retainedCheckpoints(jobId), exact: true });
  // A completed checkpoint can make retention let older ones go (DISCARDED), which no event reports: the history
  // and the retained ones (the key's prefix covers both) are read again.
  const refetchAfterRetention = (jobId: string) => void client.invalidateQueries({ queryKey: queryKeys.checkpoints(jobId) });

  const handlers: Partial<Record<ServerEventName, Listener>> = {
    'job:state': (e: StateEvent) => {
      updateJob(e.jobId, (job) => jobDetailWithState(job, e));
      const jobs = client.getQueryState<Job[]>(queryKeys.jobs);
      if (jobs?.fetchStatus === 'fetching') refetchAfterFetch(queryKeys.jobs);
      else if (jobs) {
        const next = jobs.data && jobsWithState(jobs.data, e);
        if (next) client.setQueryData(queryKeys.jobs, next);
        else void client.invalidateQueries({ queryKey: queryKeys.jobs, exact: true });
      }
      // A job that ends writes its final savepoint and end time: read them once rather than guess.
      if (isTerminal(e.to)) void client.invalidateQueries({ queryKey: queryKeys.job(e.jobId) });
    },
    'checkpoint:triggered': (e: TriggeredEvent) => {
      const attempt = attemptOf(e.jobId);
      updateCheckpoints(e.jobId, (list) => checkpointsWithTriggered(list, e, attempt));
      updateJob(e.jobId, (job) => latestWithCheckpoint(job, pendingCheckpoint(e, attempt)));
      if (e.kind === 'SAVEPOINT') refetchRetained(e.jobId);
    },
    'checkpoint:ack': (e: AckEvent) => {
      updateCheckpoints(e.jobId, (list) => checkpointsWithAck(list, e));
    },
    'checkpoint:completed': (e: Checkpoint) => {
      updateCheckpoints(e.jobId, (list) => checkpointsWithResult(list, e));
      updateJob(e.jobId, (job) => latestWithCheckpoint(job, e));
      refetchAfterRetention(e.jobId);
    },
    'checkpoint:failed': (e: Checkpoint) => {
      updateCheckpoints(e.jobId, (list) => checkpointsWithResult(list, e));
      updateJob(e.jobId, (job) => latestWithCheckpoint(job, e));
      if (e.kind === 'SAVEPOINT') refetchRetained(e.jobId);
    },
    'checkpoint:failures': (e: ServerEventPayload<'checkpoint:failures'>) => {
      updateJob(e.jobId, (job) => ({ ...job, checkpointFailures: e }));
    },
    'job:metrics': (e: MetricsEvent) => {
      updateJob(e.jobId, (job) => jobDetailWithMetrics(job, e));
    },
    'scaling:event': (e: ScalingEvent) => {
      update<ScalingEvent[]>(queryKeys.scaling(e.jobId), (list) => scalingEventsWith(list, e));
      // A settled rescale changed the plan's parallelism and the key-group owners: read them once.
      if (SCALING_SETTLED.has(e.status)) {
        void client.invalidateQueries({ queryKey: queryKeys.job(e.jobId), exact: true });
        void client.invalidateQueries({ queryKey: queryKeys.keyGroups(e.jobId), exact: true });
      }
    },
    'job:stall': (e: StallEvent) => {
      updateJob(e.jobId, (job) => withStall(job, e));
      update<Job[]>(queryKeys.jobs, (jobs) => jobsWith(jobs, e.jobId, (job) => withStall(job, e)));
    },
    'job:desired': (e: DesiredEvent) => {
      updateJob(e.jobId, (job) => withDesired(job, e));
      update<Job[]>(queryKeys.jobs, (jobs) => jobsWith(jobs, e.jobId, (job) => withDesired(job, e)));
    },
    'job:recovery': (e: RecoveryEvent) => {
      // null: the control plane lists no recoveries (see useRecoveries), so the events alone make the list.
      update<RecoveryEvent[] | null>(queryKeys.recoveries(e.jobId), (list) => recoveriesWith(list ?? [], e));
    },
  };
  const entries = Object.entries(handlers) as [ServerEventName, Listener][];
  for (const [event, handler] of entries) socket.on(event, handler);
  return () => {
    for (const [event, handler] of entries) socket.off(event, handler);
  };
}
