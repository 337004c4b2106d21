import { commandSchema, parseJson, type Command } from '../protocol.ts';
import { CommandQueue } from './commandQueue.ts';
import type { SubtaskContext } from './context.ts';

/** A stream entry as ioredis returns it: its id and its field list (a command is field `c`). */
export type StreamEntry = [id: string | Buffer, fields: (string | Buffer)[]];

/**
 * What a wait inside a command's handler does with each command that arrives meanwhile: `queue` it for after the
 * handler, or `drop` it. It may end its wait on one (stop, cancel, the rollback of what it waits for); it runs none.
 */
export type ArrivalWatcher = (command: Command) => 'queue' | 'drop';

/** A read of the command stream sent ahead (`poke`) and its reply, once in. */
interface ReadAhead {
  done: boolean;
  promise: Promise<void>;
  reply?: [key: string, entries: StreamEntry[]][] | null;
  error?: unknown;
}

/**
 * The attempt's command stream (control → subtasks): read where the subtask reads anyway (its input loop, its
 * source loop, a handover wait), validated, and handled in ONE queue, one command at a time (see CommandQueue).
 */
export class Commands {
  /** The last stream entry taken. */
  lastId = '0-0';
  private readonly queue: CommandQueue<Command>;
  private watcher: ArrivalWatcher | undefined;
  private ahead: ReadAhead | undefined;

  constructor(
    private readonly ctx: SubtaskContext,
    handle: (command: Command) => Promise<void>,
  ) {
    this.queue = new CommandQueue(handle);
  }

  get key(): string {
    return this.ctx.commandsKey();
  }

  /** Starts after the task's `commandsAfter`, else after the newest command: older ones were not for it. */
  async open(): Promise<void> {
    const { task } = this.ctx;
    if (task.commandsAfter !== undefined) this.lastId = task.commandsAfter;
    else {
      const last = await this.ctx.redis.xrevrange(this.key, '+', '-', 'COUNT', 1);
      this.lastId = last[0]?.[0] ?? '0-0';
    }
  }

  /** Takes entries read from the command stream: each valid command of this attempt is queued (not yet handled). */
  take(entries: StreamEntry[]): void {
    for (const [rawId, fields] of entries) {
      const id = rawId.toString();
      if (!isAfter(id, this.lastId)) continue;
      this.lastId = id;
      const parsed = parseJson(commandSchema, fields[1]?.toString());
      if (!parsed.ok) {
        this.ctx.log.warn({ entry: id, reason: parsed.reason }, 'malformed command skipped');
        continue;
      }
      const cmd = parsed.value;
      if (cmd.attempt !== this.ctx.task.attempt) continue;
      if (this.watcher?.(cmd) === 'drop') continue;
      this.queue.push(cmd);
    }
  }

  /** Handles the queued commands, unless one is being handled already (then they wait for it). */
  drain(): Promise<void> {
    return this.queue.drain();
  }

  /**
   * Without waiting for Redis: handles what the read started by the call before brought, once its reply is in, and
   * starts the next read. A source busy emitting learns of a command one round trip later than a waiting read
   * would tell it, but never stops for the round trip: with Redis 10 ms away, a read every 5 ms that waited for its
   * reply left the source a third of its time.
   */
  async poke(): Promise<void> {
    const ahead = this.ahead;
    if (ahead && !ahead.done) return;
    if (ahead) await this.takeAhead();
    const next: ReadAhead = { done: false, promise: Promise.resolve() };
    next.promise = this.ctx.blocking.xread('COUNT', 16, 'STREAMS', this.key, this.lastId).then(
      (reply) => {
        next.reply = reply;
        next.done = true;
      },
      (err: unknown) => {
        next.error = err;
        next.done = true;
      },
    );
    this.ahead = next;
  }

  /** Waits for the read `poke` started, if any, and handles what it brought. */
  private async takeAhead(): Promise<void> {
    const ahead = this.ahead;
    if (!ahead) return;
    await ahead.promise;
    this.ahead = undefined;
    if (ahead.error) throw ahead.error;
    for (const [, entries] of ahead.reply ?? []) this.take(entries);
    await this.drain();
  }

  /** Reads new commands, blocking up to `blockMs` when there are none, and handles them. */
  async poll(blockMs: number): Promise<void> {
    // A read `poke` started goes first: commands are taken in order, and one connection serves both.
    await this.takeAhead();
    const { blocking, deadline } = this.ctx;
    const res =
      blockMs > 0
        ? await deadline.within(blockMs, () => blocking.xread('COUNT', 16, 'BLOCK', blockMs, 'STREAMS', this.key, this.lastId))
        : await blocking.xread('COUNT', 16, 'STREAMS', this.key, this.lastId);
    for (const [, entries] of res ?? []) this.take(entries);
    await this.drain();
  }

  /** Shows every command that arrives while `wait` runs to `watcher` first. */
  async watching<T>(watcher: ArrivalWatcher, wait: () => Promise<T>): Promise<T> {
    const outer = this.watcher;
    this.watcher = watcher;
    try {
      return await wait();
    } finally {
      this.watcher = outer;
    }
  }
}

/** Whether stream entry id `a` comes after `b` (ids are `ms-seq`). */
export function isAfter(a: string, b: string): boolean {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am! > bm! || (am === bm && as! > bs!);
}

/** The smallest stream entry id after `id` (ids are `ms-seq`). */
export function nextId(id: string): string {
  const [ms, seq] = id.split('-');
  return `${ms}-${Number(seq) + 1}`;
}
