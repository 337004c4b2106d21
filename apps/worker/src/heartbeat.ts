import { Worker } from 'node:worker_threads';

/** What the heartbeat thread (heartbeatThread.mjs) needs to report a worker. */
interface HeartbeatConfig {
  redisUrl: string;
  /** The worker's hash and the set of workers. */
  key: string;
  workersKey: string;
  /** `operators`: the user operators' versions the worker loaded, as JSON. */
  fields: { id: string; host: string; pid: string; slots: string; operators: string };
  intervalMs: number;
  /** How long the main thread may go without a sign of life before the worker stops beating (it is stuck). */
  stuckMs: number;
  /** [0]: when the main thread last showed life, ms since the epoch. */
  alive: SharedArrayBuffer;
}

/**
 * The worker's heartbeat, beaten from a thread of its own: a subtask that keeps the main thread busy for a while
 * (a large state to load, a burst to process) does not make a live worker look dead. A worker whose process
 * died stops beating at once; one whose main thread is stuck for `stuckMs` stops too, and is treated as lost.
 */
export class Heartbeat {
  private readonly thread: Worker;
  private readonly alive: BigInt64Array;
  private readonly tick: NodeJS.Timeout;

  constructor(config: Omit<HeartbeatConfig, 'alive'>, onError: (msg: string) => void) {
    const alive = new SharedArrayBuffer(8);
    this.alive = new BigInt64Array(alive);
    this.touch();
    this.tick = setInterval(() => this.touch(), 100);
    // Plain JavaScript: a worker thread does not inherit the TypeScript loader the process may run with.
    this.thread = new Worker(new URL('./heartbeatThread.mjs', import.meta.url), { workerData: { ...config, alive } satisfies HeartbeatConfig });
    this.thread.on('message', (m: { error?: string }) => m.error && onError(m.error));
    this.thread.on('error', (err) => onError(err.message));
  }

  private touch(): void {
    Atomics.store(this.alive, 0, BigInt(Date.now()));
  }

  /** The worker's subtasks as of now; the next beat reports them (this one is sent at once). */
  report(subtasks: unknown[]): Promise<void> {
    return new Promise((resolve) => {
      const done = (m: { beat?: boolean }) => m.beat && (this.thread.off('message', done), resolve());
      this.thread.on('message', done);
      this.thread.postMessage({ subtasks: JSON.stringify(subtasks) });
    });
  }

  async stop(): Promise<void> {
    clearInterval(this.tick);
    await this.thread.terminate();
  }
}
