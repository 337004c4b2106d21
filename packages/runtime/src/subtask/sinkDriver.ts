import { isTransient } from '../connectors/postgresSink.ts';
import { SinkFencedError, sinkErrorIsTransient, type Sink } from '../connectors/sink.ts';
import type { SubtaskContext } from './context.ts';

/** How often at-least-once sinks write at the latest, unless one asks for sooner. */
const DEFAULT_FLUSH_MS = 1000;

/** Records an at-least-once sink may hold unwritten before processing waits for its writes (backpressure). */
export const SINK_BUFFER_BOUND = 50_000;

/** Between two tries of a write that failed while processing waits for it. */
const RETRY_MS = 200;

/**
 * Drives the chain's sinks (DESIGN §8): periodic writes of at-least-once sinks beside processing, pre-commits at
 * barriers, commits when checkpoints complete, the gate after a rescale, and their last writes at the end.
 */
export class SinkDriver {
  /**
   * A rescale that handed this subtask keys: its sinks hold their writes until the rescale's checkpoint
   * completes, because the old owners' sinks write those keys' values from before the barrier up to then.
   */
  gate: number | undefined;
  /** The newest checkpoint known to have completed. */
  lastCompleted = 0;
  private readonly flushMs: number;
  private lastFlush: number;
  private flushing: Promise<unknown> | undefined;
  private failure: unknown;
  /** The sinks that write between checkpoints (at-least-once): those whose buffer is bounded. */
  private readonly writing: readonly Sink[];
  /** Since when processing waits for sinks holding too much unwritten output (see relieve). */
  private waitingSince: number | undefined;
  /** Sink commits, in order of their checkpoints. */
  private commits: Promise<void> = Promise.resolve();
  /** A commit that failed for a passing reason; the next one covers it (commits take every checkpoint up to theirs). */
  private commitFailed = false;

  constructor(
    private readonly ctx: SubtaskContext,
    readonly sinks: readonly Sink[],
    t: number,
    private readonly bound = SINK_BUFFER_BOUND,
  ) {
    this.flushMs = Math.min(DEFAULT_FLUSH_MS, ...sinks.map((s) => s.flushIntervalMs ?? DEFAULT_FLUSH_MS));
    // A transactional sink holds everything until the barrier: only the others are bounded (waiting would hold the barrier).
    this.writing = sinks.filter((s) => s.delivery === 'at-least-once');
    this.lastFlush = t;
  }

  /** Fences older attempts off and settles their output (transactional sinks), before the subtask runs. */
  async open(): Promise<void> {
    await Promise.all(this.sinks.map((s) => s.open()));
  }

  /** Sinks that write before their checkpoint completes: after a rescale they must wait for the old owners' last writes. */
  gated(): boolean {
    return this.sinks.some((s) => s.delivery === 'at-least-once');
  }

  /** Throws what made a sink fail for good. */
  check(): void {
    if (this.failure) throw this.failure;
  }

  /** Starts a periodic write of at-least-once sinks, beside processing, when one is due (barriers and the end wait for it). */
  maybeFlush(t: number): void {
    if (!this.gated() || this.gate !== undefined || this.flushing || t - this.lastFlush < this.flushMs) return;
    void this.startFlush(t);
  }

  private startFlush(t: number): Promise<unknown> {
    this.lastFlush = t;
    return (this.flushing = Promise.all(this.sinks.map((s) => s.flush()))
      .catch((err) => this.onFailure(err, 'a periodic write'))
      .finally(() => (this.flushing = undefined)));
  }

  /** Whether a sink holds more unwritten output than it may (and may write it now: not while a rescale gates it). */
  overfull(): boolean {
    return this.gate === undefined && this.writing.some((s) => (s.buffered?.() ?? 0) > this.bound);
  }

  /**
   * Backpressure from sinks: while one holds more than its bound unwritten, processing waits for their writes,
   * starting one when none is in flight; after a write that failed it waits `RETRY_MS` and tries again. Ends early
   * when `done` says the subtask is ending (fenced off, aborted).
   */
  async relieve(now: () => number, done: () => boolean): Promise<void> {
    if (!this.overfull()) return;
    this.waitingSince = now();
    try {
      while (this.overfull() && !done()) {
        if (!this.flushing) {
          const before = this.buffered();
          await this.startFlush(now());
          this.check();
          // Nothing written (the write failed, and will be retried): not at once.
          if (this.buffered() >= before) await new Promise((r) => setTimeout(r, RETRY_MS));
        } else await this.flushing;
      }
    } finally {
      this.waitingSince = undefined;
    }
  }

  /** What processing waits for, if it waits for sinks: how much they hold unwritten, and for how long. */
  waiting(t: number): { buffered: number; forMs: number } | undefined {
    return this.waitingSince === undefined ? undefined : { buffered: this.buffered(), forMs: Math.round(t - this.waitingSince) };
  }

  /** Whether an at-least-once sink holds output for its next periodic write. */
  holding(): boolean {
    return this.buffered() > 0;
  }

  private buffered(): number {
    return this.writing.reduce((n, s) => n + (s.buffered?.() ?? 0), 0);
  }

  /**
   * At barrier n: sinks take what they hold now and write it beside processing, in order after any write in
   * flight; the acknowledgement waits for the returned promise (pre-commit).
   */
  preCommit(n: number): Promise<unknown> {
    const writes = Promise.all(this.sinks.map((s) => s.preCommit(n)));
    writes.catch(() => {}); // awaited by the acknowledgement; this only keeps an early failure from counting as unhandled
    return writes;
  }

  /**
   * Checkpoint n completed: transactional sinks make its output visible. A zombie's commit is refused (the
   * subtask ends, fenced); one that fails for a passing reason (Postgres away) is covered by the next; any
   * other failure fails the subtask.
   */
  commit(n: number): void {
    this.lastCompleted = Math.max(this.lastCompleted, n);
    this.commits = this.commits
      .then(() => Promise.all(this.sinks.map((s) => s.commit(n))))
      .then(
        () => void (this.commitFailed = false),
        (err) => this.onFailure(err, `committing checkpoint ${n}`),
      );
  }

  /** Lets the periodic write in flight finish; throws if a sink failed for good. */
  async settleWrites(): Promise<void> {
    await this.flushing;
    this.check();
  }

  /** The input ended and every checkpoint write is done: commits settle, then what is left becomes visible. */
  async finish(): Promise<void> {
    await this.commits;
    this.check();
    await Promise.all(this.sinks.map((s) => s.finish(this.lastCompleted)));
  }

  /** Lets the commits in flight finish; a subtask stopped after a savepoint whose commit failed for a passing reason retries it. */
  async settle(): Promise<void> {
    await this.commits;
    // Stopped after a savepoint whose commit failed for a passing reason: nothing would commit it later.
    for (let i = 0; this.ctx.outcome === 'stopped' && this.commitFailed && i < 5; i++) {
      await new Promise((r) => setTimeout(r, 500 * 2 ** i));
      this.commit(this.lastCompleted);
      await this.commits;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.sinks.map((s) => s.close()));
  }

  /** Sorts a sink's failure: fenced ends the subtask, a passing one is logged (and retried), the rest fail it. */
  private onFailure(err: unknown, what: string): void {
    if (err instanceof SinkFencedError) this.ctx.outcome ??= 'fenced';
    else if (sinkErrorIsTransient(err, isTransient)) {
      this.commitFailed ||= what.startsWith('committing');
      this.ctx.log.warn({ error: (err as Error).message }, `sink: ${what} failed, will retry`);
    } else this.failure ??= err;
  }
}
