/**
 * Runs commands one at a time, in arrival order, never one inside another: a command pushed while one is being
 * handled (by a wait inside its handler, or by the handler itself) waits in the queue until that handler returned,
 * and `drain` called meanwhile returns at once, leaving it to the drain already under way.
 */
export class CommandQueue<C> {
  private readonly queue: C[] = [];
  private handling = false;

  constructor(private readonly handle: (command: C) => Promise<void>) {}

  push(command: C): void {
    this.queue.push(command);
  }

  get size(): number {
    return this.queue.length;
  }

  /** Whether a command is being handled right now. */
  get busy(): boolean {
    return this.handling;
  }

  /** Handles every queued command, and those queued meanwhile, in order; a failing handler stops it and throws. */
  async drain(): Promise<void> {
    if (this.handling) return;
    this.handling = true;
    try {
      for (let c = this.queue.shift(); c !== undefined; c = this.queue.shift()) await this.handle(c);
    } finally {
      this.handling = false;
    }
  }
}
