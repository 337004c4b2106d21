/**
 * Paces a source at `rate` events per second (0: as fast as it can), from a clock the caller reads (ms, any
 * origin), so the arithmetic is testable without waiting. The allowance is what the rate permits since the start
 * minus what was emitted; a changed rate starts counting afresh.
 */
export class RateLimiter {
  private started: number;
  private emitted = 0;

  constructor(
    private rate: number,
    now: number,
  ) {
    this.started = now;
  }

  /** Sets the rate; a different one starts counting from `now` (a rescale changed the source's share). */
  setRate(rate: number, now: number): void {
    if (rate === this.rate) return;
    this.rate = rate;
    this.started = now;
    this.emitted = 0;
  }

  /** How many events may go now, at most `max`, and when none may, how long to wait for the next (ms, else 0). */
  allowance(max: number, now: number): { budget: number; waitMs: number } {
    const { rate } = this;
    if (rate <= 0) return { budget: max, waitMs: 0 };
    const allowed = Math.floor(((now - this.started) / 1000) * rate) - this.emitted;
    const waitMs = allowed <= 0 ? Math.max(1, Math.ceil(((this.emitted + 1) / rate) * 1000 - (now - this.started))) : 0;
    // Far behind (after a pause): catch up gradually rather than in one burst.
    if (allowed > 10 * rate) this.started = now - (this.emitted / rate) * 1000;
    return { budget: Math.min(max, Math.max(0, allowed)), waitMs };
  }

  /** Counts events that went. */
  took(n: number): void {
    this.emitted += n;
  }
}
