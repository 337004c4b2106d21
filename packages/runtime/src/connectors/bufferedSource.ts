import { splitsFor, SplitWatermarks, type EventTimeSettings, type Rec } from '@keyflow/core';
import type { SourceLag } from '../protocol.ts';
import type { Source, SourceOutput } from './source.ts';

/** A message a split reader fetched: where it sits in its split, and what it holds. */
export interface Fetched {
  /** Its position: after emitting it, the split's offset (what a checkpoint keeps, what reading resumes after). */
  offset: unknown;
  /** Its bytes or text, as the broker gave them; or a record already made (a change of a table). */
  data: Uint8Array | string | Rec;
  /** Why it is no message at all (dead-lettered with its data, like one that does not decode). */
  error?: string;
}

/** How far a split's reader is behind its broker: messages, bytes or time, as the broker can say. */
export type SplitLag = Omit<SourceLag, 'split' | 'name'>;

/** One split's reading from a broker, opened after a position and driven by a BufferedSource. */
export interface SplitReader {
  /** Where it starts reading after, when it was opened without an offset (a new job's start, made concrete). */
  readonly from?: unknown;
  /** Messages after the last one it returned, up to `max`; resolves empty when none came for a while. */
  next(max: number): Promise<Fetched[]>;
  /** How far behind the broker the split is, from `offset`, the last message emitted (undefined: none yet). */
  lag?(offset: unknown): Promise<SplitLag>;
  close(): Promise<void>;
}

/** How a message's bytes become a record; a thrown error's message is the dead letter's reason. */
export type MessageFormat = 'json' | 'text';

/** Raw bytes kept of a message that is dead-lettered. */
const RAW_SAMPLE = 1024;

/** Messages fetched per split ahead of the subtask at most: bounded memory, and backpressure upstream. */
const PREFETCH = 4096;

/** How long a reader that failed waits before it opens its split again. */
const RETRY_MS = 1000;

/** How long a split may keep failing before the subtask fails with it (a job reading nothing must not look healthy). */
const FAIL_AFTER_MS = 30_000;

/**
 * A source reading a broker (DESIGN §8): each split a reader of its own, fetching ahead into a bounded buffer while
 * the subtask emits from it. A split's offset is that of the last message *emitted*, never fetched: what a
 * checkpoint or a rescale's handover keeps is exactly what went downstream, and reading resumes right after it.
 */
export abstract class BufferedSource implements Source {
  readonly rate = 0;
  splits: number[];
  readonly offsets = new Map<number, unknown>();
  readonly watermarks: SplitWatermarks;
  private readonly buffers = new Map<number, Fetched[]>();
  private readonly readers = new Map<number, ReaderLoop>();
  private readonly lags = new Map<number, SplitLag>();
  /** How long a split may keep failing before the subtask fails with it. */
  protected failAfterMs = FAIL_AFTER_MS;
  /** A split that kept failing: the subtask fails with it at the next emit (and the job recovers, or fails for good). */
  private failure: Error | undefined;
  /** Splits a rescale gave it whose offsets have not arrived yet. */
  private readonly pending = new Set<number>();
  private closed = false;
  /** Wakes the readers that wait for room in their buffer. */
  private drained: (() => void) | undefined;
  /** Pending until the next emit makes room (never an already resolved promise: a full reader would spin on it). */
  private room!: Promise<void>;

  constructor(
    /** How many splits the source has (fixed for the job). */
    protected readonly splitCount: number,
    index: number,
    parallelism: number,
    eventTime: EventTimeSettings,
    protected readonly format: MessageFormat,
    private readonly deadLetter: (record: unknown, reason: string) => void,
    protected readonly log: { warn(obj: object, msg: string): void },
    now = performance.now(),
  ) {
    this.wakeReaders();
    this.splits = this.splitsFor(index, parallelism);
    this.watermarks = new SplitWatermarks(eventTime.watermarkDelay, eventTime.idleTimeout);
    this.watermarks.assign(this.splits, now);
  }

  /** Opens a reader of `split` after `offset` (undefined: where the settings say a new job starts). */
  protected abstract openSplit(split: number, offset: unknown): Promise<SplitReader>;

  /** A short name of the split for logs and lag, e.g. its stream key. */
  protected abstract splitName(split: number): string;

  splitsFor(index: number, parallelism: number): number[] {
    return splitsFor(index, parallelism, this.splitCount);
  }

  assign(splits: number[]): void {
    // Splits it gains are read only once their offsets arrived (settle): until then nothing says where to start.
    for (const split of splits) if (!this.splits.includes(split)) this.pending.add(split);
    // Splits it gave away stop being read at once: their offsets went to their new owners at the barrier, and a
    // reader left running (reopening after a failure) would compete with the new owner's (an MQTT session is one client).
    for (const split of this.splits) if (!splits.includes(split)) void this.stopReader(split);
    this.splits = splits;
  }

  settle(now = performance.now()): void {
    this.pending.clear();
    for (const split of [...this.readers.keys()]) if (!this.splits.includes(split)) void this.stopReader(split);
    for (const split of [...this.offsets.keys()]) if (!this.splits.includes(split)) this.offsets.delete(split);
    for (const split of [...this.buffers.keys()]) if (!this.splits.includes(split)) this.buffers.delete(split);
    this.watermarks.assign(this.splits, now);
  }

  emit(budget: number, out: SourceOutput): { produced: number; exhausted: boolean } {
    if (this.failure) throw this.failure;
    this.startReaders();
    let produced = 0;
    let progressed = true;
    // Round robin over the splits, a message at a time, so one busy split does not starve the others.
    while (produced < budget && progressed) {
      progressed = false;
      for (const split of this.splits) {
        const buffer = this.buffers.get(split);
        const m = buffer?.shift();
        if (!m) continue;
        progressed = true;
        this.offsets.set(split, m.offset);
        const record = m.error ?? this.decode(m.data);
        if (typeof record === 'string') this.deadLetter(rawSample(m.data), record);
        else out.emit(split, record);
        if (++produced >= budget) break;
      }
    }
    if (produced) this.wakeReaders();
    return { produced, exhausted: false };
  }

  hasBacklog(): boolean {
    for (const split of this.splits) if (this.buffers.get(split)?.length) return true;
    return false;
  }

  /** Each held split's lag as last read (refreshed in the background, at most once a second). */
  lag(): SourceLag[] {
    for (const [split, r] of this.readers) if (!r.lagging) void this.refreshLag(split, r);
    return this.splits.flatMap((split) => {
      const l = this.lags.get(split);
      return l ? [{ split, name: this.splitName(split), ...l }] : [];
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wakeReaders();
    await Promise.all([...this.readers.keys()].map((split) => this.stopReader(split)));
  }

  /** A message as a record: the record, or why it is not one (the dead letter's reason). */
  protected decode(data: Fetched['data']): Rec | string {
    if (typeof data === 'object' && !(data instanceof Uint8Array)) return data;
    const text = typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
    if (this.format === 'text') return { value: text };
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return `not valid JSON: ${(err as Error).message}`;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      return `not a JSON object: a record is an object of fields, this is ${Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`}`;
    return value as Rec;
  }

  /** Starts reading the held splits that have no reader yet (after a restore or a handover set their offsets). */
  private startReaders(): void {
    if (this.closed) return;
    for (const split of this.splits) if (!this.readers.has(split) && !this.pending.has(split)) this.startReader(split);
  }

  private startReader(split: number): void {
    const loop: ReaderLoop = { stopped: false, lagging: false, reader: undefined, done: Promise.resolve() };
    this.buffers.set(split, this.buffers.get(split) ?? []);
    loop.done = this.read(split, loop);
    this.readers.set(split, loop);
  }

  /** One split's loop: fetch while there is room, reopen after a failure (from the last emitted offset). */
  private async read(split: number, loop: ReaderLoop): Promise<void> {
    while (!loop.stopped) {
      try {
        // Reopened from what was emitted: what was fetched but not emitted is fetched again.
        this.buffers.set(split, []);
        loop.reader = await this.openSplit(split, this.offsets.get(split));
        // A new job's 'latest' is pinned at once: a recovery before its first message resumes there, not at a later 'latest'.
        if (this.offsets.get(split) === undefined && loop.reader.from !== undefined && !loop.stopped) this.offsets.set(split, loop.reader.from);
        while (!loop.stopped) {
          const buffer = this.buffers.get(split)!;
          if (buffer.length >= PREFETCH) {
            await this.room;
            continue;
          }
          const got = await loop.reader.next(PREFETCH - buffer.length);
          loop.failingSince = undefined;
          if (!loop.stopped) for (const m of got) buffer.push(m);
        }
      } catch (err) {
        if (loop.stopped) break;
        this.log.warn({ split: this.splitName(split), error: (err as Error).message }, 'reading a split failed; reopening it');
        loop.failingSince ??= Date.now();
        if (Date.now() - loop.failingSince >= this.failAfterMs)
          this.failure ??= new Error(`reading ${this.splitName(split)} kept failing for ${this.failAfterMs / 1000} s: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, RETRY_MS));
      } finally {
        const reader = loop.reader;
        loop.reader = undefined;
        await reader?.close().catch(() => {});
      }
    }
  }

  private async stopReader(split: number): Promise<void> {
    const loop = this.readers.get(split);
    if (!loop) return;
    this.readers.delete(split);
    this.lags.delete(split);
    loop.stopped = true;
    this.wakeReaders();
    await loop.reader?.close().catch(() => {});
    await loop.done;
  }

  private wakeReaders(): void {
    this.drained?.();
    this.room = new Promise((r) => (this.drained = r));
  }

  private async refreshLag(split: number, loop: ReaderLoop): Promise<void> {
    if (!loop.reader?.lag || Date.now() - (loop.lagAt ?? 0) < 1000) return;
    loop.lagging = true;
    loop.lagAt = Date.now();
    try {
      const l = await loop.reader.lag(this.offsets.get(split));
      if (this.readers.get(split) === loop) this.lags.set(split, l);
    } catch {
      // A lag that cannot be read now is read on the next report.
    } finally {
      loop.lagging = false;
    }
  }
}

interface ReaderLoop {
  stopped: boolean;
  /** When its split began failing, without a successful read since. */
  failingSince?: number;
  lagging: boolean;
  lagAt?: number;
  reader: SplitReader | undefined;
  done: Promise<void>;
}

/** A dead-lettered message's bytes as text, cut to a sample. */
function rawSample(data: Fetched['data']): string {
  const text =
    typeof data === 'string'
      ? data
      : data instanceof Uint8Array
        ? Buffer.from(data.buffer, data.byteOffset, Math.min(data.byteLength, RAW_SAMPLE)).toString('utf8')
        : JSON.stringify(data);
  return text.length > RAW_SAMPLE ? `${text.slice(0, RAW_SAMPLE)}… (${text.length} characters)` : text;
}
