import type { Stall } from '@keyflow/api';
import type { SubtaskProgress, WorkerEvent } from '@keyflow/runtime';
import type { ActiveJob } from '../jobs/activeJob.ts';

type MetricsEvent = Extract<WorkerEvent, { type: 'metrics' }>;

export interface StallOptions {
  /** No progress for this long is shown as a stall, naming the subtasks that hold the job up. */
  warnMs: number;
  /** No progress for this long fails the job over. */
  timeoutMs: number;
  /** An attempt whose subtasks have not all started this long after they were put on the queue is shown as stalled… */
  startWarnMs: number;
  /** … and fails over after this long (a restore of much state takes a while: longer than a stall). */
  startTimeoutMs: number;
}

/** What the control plane last heard from one subtask. */
interface Heard {
  reportAt: number;
  /** The end of the last window in which it moved (or had nothing to do). */
  movedAt: number;
  progress?: SubtaskProgress;
}

/** One subtask that does not move, and what it waits for (other subtasks), if anything. */
interface Stuck {
  since: number;
  reason: string;
  waitsFor: string[];
}

/** The worker pool as its heartbeats last described it: what a subtask no worker took is up against. */
export interface PoolView {
  workers: number;
  slots: number;
  usedSlots: number;
}

/** Why no worker took a subtask, in terms of the pool (unknown until the first look at the heartbeats). */
export function untakenReason(pool: PoolView | undefined): string {
  const head = 'has not started: no worker took it';
  if (!pool) return `${head} (no free slot, or no worker reads the task queue)`;
  if (pool.workers === 0) return `${head}: the pool has no live worker (start one)`;
  const workers = `${pool.workers} worker${pool.workers === 1 ? '' : 's'}`;
  const free = Math.max(0, pool.slots - pool.usedSlots);
  return free === 0
    ? `${head}: all ${pool.slots} slots of the pool's ${workers} are in use (add a worker, or lower a parallelism)`
    : `${head} although ${free} of the pool's ${pool.slots} slots ${free === 1 ? 'is' : 'are'} free (on ${workers}; none of them reads the task queue)`;
}

/** The control plane could not read its workers' events for this long: its own view is blind (Redis away), it judges nobody. */
const BLIND_MS = 2000;

/**
 * "No progress" detection (a stuck job must never look healthy): from each subtask's metrics it tells which
 * subtasks of a running job have work waiting but do not move, follows what each waits for (a full output channel
 * to its consumer, a barrier from a producer) to the subtasks that hold the others up, and names only those.
 * A checkpoint that does not come through is followed the same way, to whoever has not passed its barrier on.
 */
export class StallDetector {
  /** Per job, per attempt subtask (`chainId#index`). */
  private readonly heard = new Map<string, Map<string, Heard>>();
  /** Per job: the attempt watched and since when (clocks never start before it). */
  private readonly watching = new Map<string, { attempt: number; since: number }>();
  /** Per job and subtask: since when it is watched (a subtask a rescale adds gets its own clock), and since when it does not run. */
  private readonly seen = new Map<string, Map<string, number>>();
  private readonly absent = new Map<string, Map<string, number>>();
  private lastHeardAt = 0;
  private blindUntil = 0;
  private pool: PoolView | undefined;

  constructor(private readonly opts: StallOptions) {}

  /** The control plane read its workers' events stream (with events or without): it can hear them. */
  hearing(at: number): void {
    this.lastHeardAt = at;
  }

  /** The pool as the latest heartbeats describe it, for the reason a subtask has not started. */
  poolSeen(pool: PoolView): void {
    this.pool = pool;
  }

  record(e: MetricsEvent, at: number): void {
    this.lastHeardAt = at;
    const job = this.watching.get(e.jobId);
    if (job && job.attempt !== e.attempt) return;
    let subtasks = this.heard.get(e.jobId);
    if (!subtasks) this.heard.set(e.jobId, (subtasks = new Map()));
    const key = `${e.vertexId}#${e.index}`;
    const p = e.progress;
    const moved =
      Object.values(e.vertices).some((m) => m.recordsIn > 0 || m.recordsOut > 0) ||
      !p ||
      (p.read ?? 0) > 0 ||
      p.restoring === true ||
      (p.backlog === 0 && p.blockedOn.length === 0 && !p.aligning);
    const was = subtasks.get(key);
    subtasks.set(key, { reportAt: at, movedAt: moved ? at : (was?.movedAt ?? at), ...(p && { progress: p }) });
  }

  forget(jobId: string): void {
    this.heard.delete(jobId);
    this.watching.delete(jobId);
    this.seen.delete(jobId);
    this.absent.delete(jobId);
  }

  /**
   * The job's stall as of `now`, or undefined when it moves (or is in a state where other rules apply: stopping,
   * or a recovery's backoff). A starting attempt is judged by whether its subtasks start. `stall.failover` says the
   * timeout has passed.
   */
  evaluate(job: ActiveJob, now: number): (Stall & { failover: boolean }) | undefined {
    if (now - this.lastHeardAt > BLIND_MS) this.blindUntil = now;
    let watch = this.watching.get(job.id);
    if (job.state !== 'RUNNING' && job.state !== 'RESCALING') {
      this.watching.delete(job.id);
      return job.state === 'SCHEDULING' || job.state === 'RECOVERING' ? this.notStarted(job, now) : undefined;
    }
    if (!watch || watch.attempt !== job.attempt) {
      this.forget(job.id);
      this.watching.set(job.id, (watch = { attempt: job.attempt, since: now }));
    }
    const floor = Math.max(watch.since, this.blindUntil);
    const heard = this.heard.get(job.id) ?? new Map<string, Heard>();
    let absent = this.absent.get(job.id);
    if (!absent) this.absent.set(job.id, (absent = new Map()));
    let seen = this.seen.get(job.id);
    if (!seen) this.seen.set(job.id, (seen = new Map()));
    const stuck = new Map<string, Stuck>();
    // Subtasks the rescale in flight takes away stop at its barrier, before the plan says so.
    const leaving = (k: string) => {
      const r = job.pending?.rescale;
      return r !== undefined && k.startsWith(`${r.chainId}#`) && Number(k.slice(r.chainId.length + 1)) >= r.parallelism;
    };
    const subtasks = new Set([...job.subtasks, ...job.running].filter((k) => !job.finished.has(k) && !leaving(k)));
    for (const key of absent.keys()) if (job.running.has(key) || !subtasks.has(key)) absent.delete(key);
    for (const key of seen.keys()) if (!subtasks.has(key)) seen.delete(key);
    for (const key of subtasks) {
      if (!seen.has(key)) seen.set(key, now);
      if (!job.running.has(key) && !absent.has(key)) absent.set(key, now);
      const s = this.stuckOf(job, key, heard.get(key), Math.max(floor, seen.get(key)!, absent.get(key) ?? 0), now);
      if (s) stuck.set(key, s);
    }
    this.checkpointHolders(job, heard, stuck, Math.max(floor, job.pending?.triggeredAt ?? now), now);

    return stallOf(job.id, stuck, holders(stuck), now, this.opts.warnMs, this.opts.timeoutMs);
  }

  /**
   * A starting attempt (deployed or recovering) whose subtasks have not all reported running within the start
   * warning: names each, with whether a worker took it (and which) or none did, and then what the pool has free.
   */
  private notStarted(job: ActiveJob, now: number): (Stall & { failover: boolean }) | undefined {
    const since = Math.max(job.enqueuedAt ?? now, this.blindUntil);
    const stuck = new Map<string, Stuck>();
    for (const k of job.subtasks) {
      if (job.running.has(k) || job.finished.has(k)) continue;
      const worker = job.takenBy.get(k);
      const reason = worker
        ? `has not started: ${worker} took it but it has not reported running (opening its state, source or sinks)`
        : untakenReason(this.pool);
      stuck.set(k, { since, reason, waitsFor: [] });
    }
    return stallOf(job.id, stuck, [...stuck.keys()], now, this.opts.startWarnMs, this.opts.startTimeoutMs);
  }

  /** Whether one subtask does not move although it should, and what it waits for. */
  private stuckOf(job: ActiveJob, key: string, h: Heard | undefined, floor: number, now: number): Stuck | undefined {
    if (!job.running.has(key)) return { since: floor, reason: 'is not running', waitsFor: [] };
    if (!h || now - Math.max(h.reportAt, floor) >= this.opts.warnMs) {
      const since = Math.max(h?.reportAt ?? floor, floor);
      return { since, reason: 'has not reported (its process may be frozen or its event loop stuck)', waitsFor: [] };
    }
    const p = h.progress;
    const since = Math.max(h.movedAt, floor);
    if (p?.aligning && p.aligning.checkpoint !== job.pending?.number && p.aligning.forMs >= this.opts.warnMs)
      // A barrier no checkpoint in flight explains: nothing upstream will ever complete that alignment.
      return {
        since: Math.max(floor, now - p.aligning.forMs),
        reason: `is aligning on checkpoint ${p.aligning.checkpoint}, which is not in flight`,
        waitsFor: [],
      };
    if (!p || now - since < this.opts.warnMs) return undefined;
    if (p.blockedOn.length) return { since, reason: `waits for ${p.blockedOn.join(', ')} to read its output`, waitsFor: p.blockedOn };
    if (p.sinkWaiting)
      return {
        since,
        reason: `waits for its sink to write the ${p.sinkWaiting.buffered} records it holds (the destination refuses them or takes them too slowly)`,
        waitsFor: [],
      };
    if (p.aligning)
      return {
        since,
        reason: `waits for the barrier of checkpoint ${p.aligning.checkpoint} from ${p.aligning.missing.join(', ')}`,
        waitsFor: p.aligning.missing,
      };
    return { since, reason: `has ${p.backlog} ${p.backlog === 1 ? 'entry' : 'entries'} of input waiting but processes none`, waitsFor: [] };
  }

  /**
   * A checkpoint pending for longer than `warnMs`: follows each subtask that has not acknowledged it to whoever has
   * not passed the barrier on. A subtask that passed it on and is still writing its state is slow, not stuck (the
   * checkpoint timeout covers it). So is a barrier behind records that move: queued behind a full channel whose
   * consumer reads, or missing at a consumer that works through the records before it (backpressure from a slow
   * operator: the barrier comes through as they do).
   */
  private checkpointHolders(job: ActiveJob, heard: Map<string, Heard>, stuck: Map<string, Stuck>, since: number, now: number): void {
    const cp = job.pending;
    if (!cp || now - since < this.opts.warnMs) return;
    const sources = new Set(job.chains.filter((c) => c.inputs.length === 0).map((c) => c.id));
    const producers = (key: string) => {
      const chain = job.chains.find((c) => c.id === key.slice(0, key.lastIndexOf('#')));
      const upstream = new Set(chain?.inputs.map((e) => job.chains.find((c) => c.vertices.some((v) => v.id === e.from))?.id));
      return [...cp.waiting].filter((k) => upstream.has(k.slice(0, k.lastIndexOf('#'))));
    };
    const moving = (key: string) => {
      const h = heard.get(key);
      return h !== undefined && now - h.movedAt < this.opts.warnMs;
    };
    for (const key of cp.waiting) {
      if (stuck.has(key)) continue;
      const p = heard.get(key)?.progress;
      if (!p || p.lastBarrier >= cp.number) continue;
      // Its barrier waits behind records in a full channel, like they do: held up only if a consumer does not read.
      if (p.blockedOn.length) {
        if (!p.blockedOn.every(moving))
          stuck.set(key, { since, reason: `waits for ${p.blockedOn.join(', ')} to read its output`, waitsFor: p.blockedOn });
      } else if (sources.has(key.slice(0, key.lastIndexOf('#'))))
        stuck.set(key, { since, reason: `has not emitted the barrier of checkpoint ${cp.number}`, waitsFor: [] });
      // It works through the records before the barrier.
      else if (moving(key)) continue;
      else if (p.aligning?.checkpoint === cp.number) {
        const waitsFor = p.aligning.missing;
        stuck.set(key, { since, reason: `waits for the barrier of checkpoint ${cp.number} from ${waitsFor.join(', ')}`, waitsFor });
      } else {
        const waitsFor = producers(key).filter((k) => (heard.get(k)?.progress?.lastBarrier ?? 0) < cp.number);
        stuck.set(key, {
          since,
          reason: waitsFor.length
            ? `waits for the barrier of checkpoint ${cp.number} from ${waitsFor.join(', ')}`
            : `has not received the barrier of checkpoint ${cp.number}, though every input sent it`,
          waitsFor,
        });
      }
    }
  }
}

/**
 * The stall `culprits` (of `stuck`) make, once the earliest of them has been stuck for `warnMs`; `failover` once for
 * `timeoutMs`.
 */
function stallOf(
  jobId: string,
  stuck: ReadonlyMap<string, Stuck>,
  culprits: string[],
  now: number,
  warnMs: number,
  timeoutMs: number,
): (Stall & { failover: boolean }) | undefined {
  if (!culprits.length) return undefined;
  const since = Math.min(...culprits.map((k) => stuck.get(k)!.since));
  if (now - since < warnMs) return undefined;
  return {
    jobId,
    since: new Date(since).toISOString(),
    failoverAt: new Date(since + timeoutMs).toISOString(),
    subtasks: culprits.sort().map((k) => ({ subtask: k, reason: stuck.get(k)!.reason, since: new Date(stuck.get(k)!.since).toISOString() })),
    failover: now - since >= timeoutMs,
  };
}

/**
 * The stuck subtasks that hold the others up: follows "waits for" from each stuck subtask to a stuck one that waits
 * for nobody stuck. A wait for a subtask that moves ends nowhere (it will be served); subtasks that wait for each
 * other in a cycle are all named.
 */
export function holders(stuck: ReadonlyMap<string, { waitsFor: string[] }>): string[] {
  const out = new Set<string>();
  const roots = (key: string, path: Set<string>): void => {
    const blockers = stuck.get(key)!.waitsFor.filter((k) => stuck.has(k));
    if (!stuck.get(key)!.waitsFor.length) return void out.add(key);
    for (const b of blockers) {
      if (path.has(b)) {
        for (const k of path) out.add(k);
        continue;
      }
      roots(b, new Set([...path, b]));
    }
  };
  for (const key of stuck.keys()) roots(key, new Set([key]));
  return [...out];
}
