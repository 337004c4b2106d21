import { encodeBatch } from '@keyflow/core';
import type { RescaleSpec } from './protocol.ts';
import type { KeyflowRedis } from './scripts.ts';

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
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The producer end of one channel: buffers records and sends them as msgpack batches, strictly in order, one
 * XADD at a time but without making the caller wait for each reply (so producing overlaps the round trip) until
 * `maxQueued` batches are on their way. It waits while the stream is over its bound, counting that wait as
 * backpressure.
 */
export class ChannelWriter {
  private buffer: unknown[] = [];
  /** Each buffered record's event time (NaN: none), side by side with `buffer`; `timed` when any has one. */
  private times: number[] = [];
  private timed = false;
  private seq = 0;
  private queued = 0;
  private tail: Promise<void> = Promise.resolve();
  private failure: unknown;
  /** Milliseconds spent waiting on a full channel since the last `takeBackpressure`. */
  private waitedMs = 0;
  private full = false;

  constructor(
    private readonly redis: KeyflowRedis,
    readonly key: string,
    private readonly settings: ChannelSettings,
    private readonly maxQueued = 4,
  ) {}

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

  /** Sends every full batch; with `all`, also the partial one. Returns once few enough batches are queued. */
  async flush(all: boolean): Promise<void> {
    const size = this.settings.batchSize;
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
      this.enqueue('b', 'd', encodeBatch(batch), timesBytes);
      while (this.queued >= this.maxQueued) await this.tail;
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
    await this.tail;
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

  private enqueue(type: string, field: string, payload: Buffer | string, times?: Buffer): void {
    const seq = ++this.seq;
    this.queued++;
    this.tail = this.tail.then(async () => {
      try {
        if (!this.failure) await this.send(type, seq, field, payload, times);
      } catch (err) {
        this.failure = err;
      } finally {
        this.queued--;
      }
    });
  }

  private async send(type: string, seq: number, field: string, payload: Buffer | string, times?: Buffer): Promise<void> {
    let started = 0;
    let pause = 1;
    const fields = times ? ['t', type, 's', seq, field, payload, 'ts', times] : ['t', type, 's', seq, field, payload];
    try {
      while (!(await this.redis.boundedXadd(this.key, this.settings.bound, ...fields))) {
        if (!started) started = performance.now();
        this.full = true;
        await sleep(pause);
        pause = Math.min(pause * 2, 10);
      }
    } finally {
      this.full = false;
    }
    if (started) this.waitedMs += performance.now() - started;
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
