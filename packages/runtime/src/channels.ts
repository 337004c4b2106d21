import { encodeBatch } from '@keyflow/core';
import type { RescaleSpec } from './protocol.ts';
import { XADD_FULL, XADD_OUT_OF_ORDER, type KeyflowRedis } from './scripts.ts';

/**
 * Entry types on a channel stream: a record batch (with its records' event times, when they have any), a barrier,
 * a watermark, the producer going idle or active again, or the end of the producer's stream.
 */
export type ChannelEntry =
  | { type: 'batch'; seq: number; data: Buffer; times?: Buffer }
  | { type: 'barrier'; seq: number; checkpoint: number; checkpointId: number; rescale?: RescaleSpec }
  | { type: 'watermark'; seq: number; watermark: number }
  | { type: 'idle'; seq: number }
  | { type: 'active'; seq: number }
  | { type: 'end'; seq: number };

/** A batch's event times as sent: one little-endian double per record, NaN for a record without one. */
export function timeAt(times: Buffer | undefined, i: number): number | undefined {
  if (!times || (i + 1) * 8 > times.length) return undefined;
  const t = times.readDoubleLE(i * 8);
  return Number.isNaN(t) ? undefined : t;
}

export interface ChannelSettings {
  /** Records per batch entry. */
  batchSize: number;
  /** Entries a channel may hold before its producer waits. */
  bound: number;
  /** Entries a producer has on their way at once (default 8; 1 waits for each reply before the next). */
  inFlight?: number;
  /**
   * The in-flight data a channel aims at, in milliseconds of its consumer's work (Flink's buffer debloating): while
   * its producer waits on it, its bound is what the consumer took in that long, at least MIN_DEBLOATED entries and at
   * most `bound`. A slow consumer's barrier so waits behind about that much work, not a full channel's. 0 or
   * unset: the fixed `bound`.
   */
  debloatMs?: number;
}

/** The least bound debloating sets, and where it starts: the consumer always has an entry after the one it works on. */
const MIN_DEBLOATED = 2;
const DEBLOAT_START = 4;
/** The least batch debloating makes (records): smaller ones cost more per record than a slow consumer gains. */
const MIN_BATCH = 64;
/** How often debloating looks at what got in (the consumer's pace while the producer waited). */
const DEBLOAT_WINDOW_MS = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long a writer whose stream was deleted waits for its stop before it fails. */
const LOST_GRACE_MS = 5000;

/** A send that failed (the writer's `failure` says why). */
const FAILED = -2;

interface Pending {
  seq: number;
  /** Records it carries (a batch's; 0 for a marker). */
  records: number;
  fields: (string | Buffer | number)[];
}

/**
 * The producer end of one channel: buffers records and sends them as msgpack batches, with up to `maxInFlight`
 * XADDs in flight at once on its connection (Redis runs them in the order sent), so producing and the round trips
 * overlap; the caller waits while that many entries are not yet in. The script takes entries only in seq order:
 * when it refuses one (the stream is over its bound: backpressure, counted as such), it refuses every later one
 * too, and the writer sends again from the refused one, alone until it is in. It sends no more than the stream
 * has room for, as far as the last reply (the stream's length) tells, so a full stream gets few entries to refuse.
 */
export class ChannelWriter {
  private buffer: unknown[] = [];
  /** Each buffered record's event time (NaN: none), side by side with `buffer`; `timed` when any has one. */
  private times: number[] = [];
  private timed = false;
  private seq = 0;
  /** Entries not yet known to be in the stream, in seq order. */
  private queue: Pending[] = [];
  /** The replies of the first `replies.length` entries of `queue`, which are in flight. */
  private replies: Promise<number>[] = [];
  /**
   * Entries the stream can still take as far as the writer knows: its bound, less its length and what is in flight.
   * None after a refusal, until a reply tells otherwise.
   */
  private room: number;
  /** The stream's bound as sent: `settings.bound`, or less while debloating finds the consumer slow. */
  private limit: number;
  /** Debloating's window: since when, the records that got in and how long the producer was blocked on the channel. */
  private window = { start: performance.now(), records: 0, blockedMs: 0 };
  /** The consumer's rate as debloating last measured it, records/s (undefined: it kept up). */
  private rate: number | undefined;
  /** Records per batch: `settings.batchSize`, or less while even the least bound holds more than `debloatMs` of work. */
  private batchSize: number;
  private pumping = false;
  private waiters: (() => void)[] = [];
  private failure: unknown;
  /** Since when its stream has been missing what it wrote (0: it is not). */
  private lostSince = 0;
  /** Milliseconds spent waiting on a full channel since the last `takeBackpressure`. */
  private waitedMs = 0;
  private full = false;

  constructor(
    private readonly redis: KeyflowRedis,
    readonly key: string,
    private readonly settings: ChannelSettings,
    private readonly maxInFlight = settings.inFlight ?? 8,
    /**
     * Whether its subtask has ended (fenced off by a newer attempt, canceled, aborted): then nothing waits on the
     * channel any more, full or lost, and what is not in stays out. A subtask of an attempt long gone whose
     * consumer is gone too would otherwise hold its slot while it waits.
     */
    private readonly ended: () => boolean = () => false,
  ) {
    this.limit = settings.debloatMs ? Math.min(settings.bound, DEBLOAT_START) : settings.bound;
    this.batchSize = settings.batchSize;
    this.room = this.limit;
  }

  /** The stream's bound and the records per batch as they are now (debloated or not). */
  get bound(): number {
    return this.limit;
  }

  get batch(): number {
    return this.batchSize;
  }

  push(record: unknown, timestamp: number | undefined): void {
    this.buffer.push(record);
    if (timestamp === undefined) this.times.push(NaN);
    else {
      this.times.push(timestamp);
      this.timed = true;
    }
  }

  get buffered(): number {
    return this.buffer.length;
  }

  /** Sends every full batch; with `all`, also the partial one. Returns once fewer than `maxInFlight` (or the bound) entries are not in. */
  async flush(all: boolean): Promise<void> {
    const size = this.batchSize;
    while (this.buffer.length >= size || (all && this.buffer.length > 0)) {
      const whole = this.buffer.length <= size;
      const batch = whole ? this.buffer : this.buffer.slice(0, size);
      const times = whole ? this.times : this.times.slice(0, size);
      this.buffer = whole ? [] : this.buffer.slice(size);
      this.times = whole ? [] : this.times.slice(size);
      let timesBytes: Buffer | undefined;
      if (this.timed) {
        timesBytes = Buffer.allocUnsafe(times.length * 8);
        for (let i = 0; i < times.length; i++) timesBytes.writeDoubleLE(times[i]!, i * 8);
        if (this.buffer.length === 0) this.timed = false;
      }
      this.enqueue('b', 'd', encodeBatch(batch), timesBytes, batch.length);
      // No more waits in the writer than the stream may hold: a debloated channel's barrier waits behind both.
      while (this.queue.length >= Math.min(this.maxInFlight, this.limit) && !this.failure && !this.ended()) await this.blocked();
    }
    this.check();
  }

  /** Flushes the records before it, then sends a barrier in line with them, and waits until all are sent. */
  async barrier(checkpoint: number, checkpointId: number, rescale?: RescaleSpec): Promise<void> {
    await this.flush(true);
    const r = rescale ? `:${rescale.scalingId}:${rescale.parallelism}:${rescale.chainId}` : '';
    this.enqueue('w', 'n', `${checkpoint}:${checkpointId}${r}`);
    await this.drain();
  }

  /** Sends a watermark after the records before it (it does not wait for the send: order is kept). */
  async watermark(watermark: number): Promise<void> {
    await this.flush(true);
    this.enqueue('m', 'n', String(watermark));
  }

  /** Says the producer is idle (holds no watermark back) or active again, after the records before it. */
  async status(idle: boolean): Promise<void> {
    await this.flush(true);
    this.enqueue(idle ? 'i' : 'a', 'n', '0');
  }

  async end(): Promise<void> {
    await this.flush(true);
    this.enqueue('e', 'n', '0');
    await this.drain();
  }

  /** Waits until everything enqueued is in the stream. */
  async drain(): Promise<void> {
    while (this.queue.length && !this.failure && !this.ended()) await this.blocked();
    this.check();
  }

  /** Whether it is waiting on a full channel right now (its consumer does not read). */
  get waiting(): boolean {
    return this.full;
  }

  takeBackpressure(): number {
    const ms = this.waitedMs;
    this.waitedMs = 0;
    return ms;
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }

  /**
   * Once a window is over: if the producer was blocked for most of it, the channel set its pace, and what got in is
   * the consumer's rate (records/s, averaged over windows). The channel then holds about `debloatMs` of that: whole
   * batches while that is at least MIN_DEBLOATED of them, else MIN_DEBLOATED smaller ones. If the producer was not
   * blocked, the consumer kept up. A bound grows at most twice per window, so one window misjudged fills no channel
   * with minutes of work.
   */
  private debloat(): void {
    const target = this.settings.debloatMs;
    if (!target) return;
    const t = performance.now();
    const { start, records, blockedMs } = this.window;
    const elapsed = t - start;
    if (elapsed < DEBLOAT_WINDOW_MS || records === 0) return;
    this.window = { start: t, records: 0, blockedMs: 0 };
    const { bound, batchSize } = this.settings;
    let limit = bound;
    let batch = batchSize;
    if (blockedMs > elapsed / 2) {
      const rate = (records * 1000) / elapsed;
      this.rate = this.rate === undefined ? rate : (this.rate + rate) / 2;
      const want = (this.rate * target) / 1000;
      const least = Math.min(bound, MIN_DEBLOATED);
      limit = Math.max(least, Math.min(bound, Math.ceil(want / batchSize)));
      if (want < least * batchSize) batch = Math.max(Math.min(batchSize, MIN_BATCH), Math.ceil(want / least));
    } else this.rate = undefined;
    this.limit = Math.min(limit, this.limit * 2);
    this.batchSize = Math.min(batch, this.batchSize * 2);
  }

  /** Waits for the next entry in (or failure), the producer blocked meanwhile: debloating counts the wait. */
  private async blocked(): Promise<void> {
    const t = performance.now();
    await this.progress();
    this.window.blockedMs += performance.now() - t;
  }

  /** Resolves at the next entry in, or failure. */
  private progress(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private enqueue(type: string, field: string, payload: Buffer | string, times?: Buffer, records = 0): void {
    // Nothing after a failed entry is sent; the next flush or drain throws.
    if (this.failure) return;
    const seq = ++this.seq;
    const fields = times ? ['t', type, 's', seq, field, payload, 'ts', times] : ['t', type, 's', seq, field, payload];
    this.queue.push({ seq, records, fields });
    this.fill();
  }

  /**
   * Sends queued entries, in order, up to `maxInFlight` and while the stream has room: when it has none, one entry
   * goes alone, to learn when it has again. The pump takes their replies.
   */
  private fill(): void {
    const most = Math.min(this.maxInFlight, this.queue.length);
    while (!this.failure && this.replies.length < most && (this.room > 0 || !this.replies.length)) {
      const entry = this.queue[this.replies.length]!;
      this.replies.push(this.send(entry, this.replies.length === 0));
      this.room--;
    }
    if (this.replies.length && !this.pumping) void this.pump();
  }

  /**
   * An entry's reply; FAILED when it failed. Refused as out of order though everything before it was in when it
   * was sent (`alone`), the stream lost what it had: it was deleted, by the job's end or by a Redis that restarted
   * empty. Then the writer waits as on a full stream, writing nothing, for LOST_GRACE_MS: the control plane stops or
   * recovers the subtask meanwhile, with the cause it knows, which a failure here would hide. After that it fails
   * (a zombie of an attempt long gone ends so).
   */
  private send(entry: Pending, alone: boolean): Promise<number> {
    return this.redis.boundedXadd(this.key, this.limit, entry.seq, ...entry.fields).then(
      (reply) => {
        if (reply !== XADD_OUT_OF_ORDER || !alone) {
          this.lostSince = 0;
          return reply;
        }
        this.lostSince ||= performance.now();
        if (performance.now() - this.lostSince < LOST_GRACE_MS) return XADD_FULL;
        this.failure ??= new Error(`channel ${this.key} does not hold entry ${entry.seq - 1} any more: it was deleted`);
        return FAILED;
      },
      (err: unknown) => {
        this.failure ??= err;
        return FAILED;
      },
    );
  }

  /** Takes the replies in order while entries are in flight: an entry in makes room, a refused one is sent again. */
  private async pump(): Promise<void> {
    this.pumping = true;
    let pause = 1;
    let waitingSince = 0;
    while (this.replies.length && !this.failure && !this.ended()) {
      const reply = await this.replies[0]!;
      // A wait on a full channel counts as it goes, so a long one shows while it lasts.
      if (waitingSince) {
        const t = performance.now();
        this.waitedMs += t - waitingSince;
        waitingSince = t;
      }
      if (reply > 0) {
        void this.replies.shift();
        this.window.records += this.queue.shift()!.records;
        this.debloat();
        this.room = this.limit - reply - this.replies.length;
        waitingSince = 0;
        pause = 1;
        this.full = false;
      } else if (reply !== FAILED) {
        // Every later entry in flight is refused too (its predecessor is not in): once they are back (and after a
        // pause when the stream is full), the refused one goes again, alone.
        this.room = 0;
        await Promise.all(this.replies);
        if (reply === XADD_FULL) {
          waitingSince ||= performance.now();
          this.full = true;
          await sleep(pause);
          pause = Math.min(pause * 2, 10);
        }
        this.replies = [];
      }
      this.fill();
      this.wake();
    }
    this.pumping = false;
    this.full = false;
    this.wake();
  }
}

/** Parses one stream entry's field list as written by `ChannelWriter`; undefined for a malformed entry. */
export function parseEntry(fields: Buffer[]): ChannelEntry | undefined {
  let type = '';
  let seq = 0;
  let data: Buffer | undefined;
  let times: Buffer | undefined;
  let n = '';
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const f = fields[i]!.toString();
    const v = fields[i + 1]!;
    if (f === 't') type = v.toString();
    else if (f === 's') seq = Number(v.toString());
    else if (f === 'd') data = v;
    else if (f === 'ts') times = v;
    else if (f === 'n') n = v.toString();
  }
  if (type === 'b' && data) return times ? { type: 'batch', seq, data, times } : { type: 'batch', seq, data };
  if (type === 'm') {
    const watermark = Number(n);
    return Number.isNaN(watermark) ? undefined : { type: 'watermark', seq, watermark };
  }
  if (type === 'i') return { type: 'idle', seq };
  if (type === 'a') return { type: 'active', seq };
  if (type === 'w') {
    const [cp, id, scalingId, parallelism, ...chain] = n.split(':');
    const [checkpoint, checkpointId] = [Number(cp), Number(id)];
    if (Number.isInteger(checkpoint) && Number.isInteger(checkpointId)) {
      const rescale = chain.length ? { scalingId: Number(scalingId), parallelism: Number(parallelism), chainId: chain.join(':') } : undefined;
      return { type: 'barrier', seq, checkpoint, checkpointId, ...(rescale && { rescale }) };
    }
  }
  if (type === 'e') return { type: 'end', seq };
  return undefined;
}
