/**
 * The one owner of a job's state in the control plane: every action that changes it (a worker event, a checkpoint
 * trigger, completion or timeout, a rescale step, a recovery, stop, cancel) runs as a step on this queue, one after
 * another, so none sees the job half-changed and none needs a flag to keep another out. Flows that wait (a rescale
 * for its new subtasks, a stop for its savepoint) wait outside the queue with `until`, which looks again after every
 * step instead of polling.
 */
export class JobActor {
  private tail: Promise<unknown> = Promise.resolve();
  private readonly waiters = new Set<() => void>();

  /** Runs `step` after every step queued before it; its result (or failure) is the caller's. */
  run<T>(step: () => Promise<T> | T): Promise<T> {
    const run = this.tail.then(step);
    this.tail = run.then(
      () => this.wake(),
      () => this.wake(),
    );
    return run;
  }

  /**
   * Resolves true once `ready()` holds — now, or after some step — and false once `gone()` holds (the job ended or
   * recovered: what was awaited will not come) or `timeoutMs` has passed.
   */
  until(ready: () => boolean, opts: { timeoutMs?: number; gone?: () => boolean } = {}): Promise<boolean> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(ok);
      };
      const check = () => {
        if (ready()) done(true);
        else if (opts.gone?.()) done(false);
      };
      if (opts.timeoutMs !== undefined) timer = setTimeout(() => done(ready()), opts.timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Lets the waiters look again; steps do this by themselves. */
  wake(): void {
    for (const check of [...this.waiters]) check();
  }
}
