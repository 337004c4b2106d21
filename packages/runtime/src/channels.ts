import { encodeBatch } from '@keyflow/core';
import type { RescaleSpec } from './protocol.ts';
import type { KeyflowRedis } from './scripts.ts';

/** Entry types on a channel stream: a record batch, a barrier, or the end of the producer's stream. */
export type ChannelEntry =
  | { type: 'batch'; seq: number; data: Buffer }
  | { type: 'barrier'; seq: number; checkpoint: number; checkpointId: number; rescale?: RescaleSpec }
  | { type: 'end'; seq: number };

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

  push(record: unknown): void {
    this.buffer.push(record);
  }

  get buffered(): number {
    return this.buffer.length;
  }

  /** Sends every full batch; with `all`, also the partial one. Returns once few enough batches are queued. */
  async flush(all: boolean): Promise<void> {
    const size = this.settings.batchSize;
    while (this.buffer.length >= size || (all && this.buffer.length > 0)) {
      const batch = this.buffer.length <= size ? this.buffer : this.buffer.slice(0, size);
      this.buffer = this.buffer.length <= size ? [] : this.buffer.slice(size);
      this.enqueue('b', 'd', encodeBatch(batch));
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

  private enqueue(type: string, field: string, payload: Buffer | string): void {
    const seq = ++this.seq;
    this.queued++;
    this.tail = this.tail.then(async () => {
      try {
        if (!this.failure) await this.send(type, seq, field, payload);
      } catch (err) {
        this.failure = err;
      } finally {
        this.queued--;
      }
    });
  }

  private async send(type: string, seq: number, field: string, payload: Buffer | string): Promise<void> {
    let started = 0;
    let pause = 1;
    try {
      while (!(await this.redis.boundedXadd(this.key, this.settings.bound, 't', type, 's', seq, field, payload))) {
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
  let n = '';
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const f = fields[i]!.toString();
    const v = fields[i + 1]!;
    if (f === 't') type = v.toString();
    else if (f === 's') seq = Number(v.toString());
    else if (f === 'd') data = v;
    else if (f === 'n') n = v.toString();
  }
  if (type === 'b' && data) return { type: 'batch', seq, data };
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
