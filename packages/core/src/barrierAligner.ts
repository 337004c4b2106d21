/** What happened when a barrier or an end marker arrived on a channel. */
export type AlignmentResult =
  { kind: 'waiting' } | { kind: 'aligned'; checkpoint: number; alignmentMs: number } | { kind: 'ignored'; reason: string };

/**
 * Aligned barriers for one subtask's input channels (DESIGN §5): on `barrier n` a channel is blocked until
 * `barrier n` has come on every open channel; channels that ended count as aligned. Pure: the caller reads
 * only unblocked channels and passes the clock in.
 */
export class BarrierAligner {
  private readonly open: Set<string>;
  private readonly blocked = new Set<string>();
  private pending: number | undefined;
  private startedAt = 0;
  /** The last checkpoint this subtask aligned on; older barriers are stale. */
  private last = 0;

  constructor(channels: Iterable<string>) {
    this.open = new Set(channels);
  }

  isBlocked(channel: string): boolean {
    return this.blocked.has(channel);
  }

  get pendingCheckpoint(): number | undefined {
    return this.pending;
  }

  /** When the pending alignment began (the clock passed to onBarrier). */
  get alignmentStartedAt(): number {
    return this.startedAt;
  }

  /** Channels still open (not ended). */
  get openChannels(): ReadonlySet<string> {
    return this.open;
  }

  onBarrier(channel: string, checkpoint: number, now: number): AlignmentResult {
    if (!this.open.has(channel)) return { kind: 'ignored', reason: `barrier on unknown or ended channel ${channel}` };
    if (checkpoint <= this.last) return { kind: 'ignored', reason: `stale barrier ${checkpoint}` };
    if (this.pending !== undefined && checkpoint < this.pending)
      return { kind: 'ignored', reason: `barrier ${checkpoint} older than pending ${this.pending}` };
    if (this.pending === undefined || checkpoint > this.pending) {
      // A newer barrier supersedes an unfinished alignment (its checkpoint was abandoned upstream).
      this.blocked.clear();
      this.pending = checkpoint;
      this.startedAt = now;
    }
    this.blocked.add(channel);
    return this.maybeAligned(now);
  }

  /** A channel delivered its end marker: it no longer takes part in alignment. */
  onEnd(channel: string, now: number): AlignmentResult {
    this.open.delete(channel);
    this.blocked.delete(channel);
    if (this.pending === undefined) return { kind: 'waiting' };
    return this.maybeAligned(now);
  }

  /** A channel that joins (a producer added by a rescale); it takes part from the next barrier on. */
  addChannel(channel: string): void {
    this.open.add(channel);
  }

  /** A channel that leaves (its producer was scaled away after a barrier); only between alignments. */
  removeChannel(channel: string): void {
    if (this.pending !== undefined) throw new Error(`cannot remove channel ${channel} during alignment of ${this.pending}`);
    this.open.delete(channel);
  }

  get allEnded(): boolean {
    return this.open.size === 0;
  }

  private maybeAligned(now: number): AlignmentResult {
    for (const c of this.open) if (!this.blocked.has(c)) return { kind: 'waiting' };
    const checkpoint = this.pending!;
    this.last = checkpoint;
    this.pending = undefined;
    this.blocked.clear();
    return { kind: 'aligned', checkpoint, alignmentMs: now - this.startedAt };
  }
}
