import { decodeValue, encodeValue } from '@keyflow/core';
import type { Redis } from 'ioredis';

/**
 * A rescale's direct state handover: an old owner sends the key groups (or source splits) that leave it
 * straight to their new owner over a Redis stream, so the new owner goes on without waiting for the rescale
 * checkpoint to be written and completed. Key groups go ahead of the barrier as a pre-copy, while the old owner
 * keeps processing, and at the barrier as a delta of the keys touched since (or whole, if they were not
 * pre-copied). Consistency still rests on the checkpoint, which gets every moved group whole: until it
 * completes, a failure recovers the whole job from the one before, at the old parallelism.
 */
export interface HandoverMessage {
  /** Index of the sending (old) subtask. */
  from: number;
  vertexId: string;
  scope: 'KEYED' | 'OPERATOR';
  /** The sender's watermark at the rescale's barrier (not in a pre-copy): where the receiver's event time starts. */
  watermark?: number;
  /**
   * Every part this message accounts for, also those without state (which `parts` leaves out). Empty in a
   * pre-copy, which sends parts ahead of the barrier that a later message covers (often with a delta).
   */
  covers: number[];
  parts: HandoverPart[];
}

/** A key group's (or split's) bytes: its whole state, or (`delta`) what changed since its pre-copy. */
export type HandoverPart = [part: number, data: Uint8Array, delta?: true];

/** Stream entries of at most about this many bytes, so the receiver decodes while the sender still encodes. */
const HANDOVER_SLICE_BYTES = 512 * 1024;
/** A handover nobody reads (its receiver died) goes away on its own. */
const HANDOVER_TTL_MS = 10 * 60_000;

/**
 * Sends `parts` to one receiver in slices: `encode` serializes each on demand (undefined: it holds nothing), so
 * encoding, sending and the receiver's decoding overlap. A pre-copy's slices cover nothing. Resolves once Redis
 * holds every slice.
 */
export async function sendHandover(
  redis: Redis,
  key: string,
  head: Pick<HandoverMessage, 'from' | 'vertexId' | 'scope' | 'watermark'>,
  covers: readonly number[],
  encode: (part: number) => HandoverPart | undefined,
  opts: {
    sliceBytes?: number;
    precopy?: boolean;
    /** Awaited after each slice (a pre-copy lets records through); `stop` is asked before each part. */
    between?: () => Promise<unknown>;
    stop?: () => boolean;
    /** Told the parts of each slice as it goes to Redis. */
    onSent?: (parts: number[]) => void;
  } = {},
): Promise<{ bytes: number; parts: number }> {
  const sliceBytes = opts.sliceBytes ?? HANDOVER_SLICE_BYTES;
  const sends: Promise<unknown>[] = [];
  let bytes = 0;
  let sent = 0;
  let slice: number[] = [];
  let parts: HandoverPart[] = [];
  let pending = 0;
  const flush = () => {
    sends.push(redis.xadd(key, '*', 'm', encodeValue({ ...head, covers: opts.precopy ? [] : slice, parts } satisfies HandoverMessage)));
    opts.onSent?.(slice);
    slice = [];
    parts = [];
    pending = 0;
  };
  for (const part of covers) {
    if (opts.stop?.()) {
      await Promise.all(sends);
      return { bytes, parts: sent };
    }
    slice.push(part);
    const p = encode(part);
    if (p) {
      parts.push(p);
      pending += p[1].byteLength;
      bytes += p[1].byteLength;
      sent++;
    }
    if (pending >= sliceBytes) {
      flush();
      // A pre-copy runs beside processing: it lets records through between slices.
      if (opts.between) await opts.between();
    }
  }
  if (parts.length || (!opts.precopy && (slice.length || sends.length === 0))) flush();
  sends.push(redis.pexpire(key, HANDOVER_TTL_MS));
  await Promise.all(sends);
  return { bytes, parts: sent };
}

/** What one receiver still waits for, per operator and scope, and what it loaded. */
export class HandoverReceiver {
  private readonly missing = new Map<string, Set<number>>();
  private readonly loaded = new Set<string>();
  /** Bytes received, pre-copies and deltas included. */
  bytes = 0;
  /** The lowest watermark the senders had at the barrier (undefined: none said one). */
  watermark: number | undefined;

  /** Distinct parts loaded (a pre-copied group and its delta count once). */
  get parts(): number {
    return this.loaded.size;
  }

  constructor(expected: { vertexId: string; scope: HandoverMessage['scope']; parts: readonly number[] }[]) {
    for (const e of expected) {
      const set = new Set(e.parts);
      if (set.size) this.missing.set(`${e.scope}:${e.vertexId}`, set);
    }
  }

  get done(): boolean {
    return this.missing.size === 0;
  }

  /** Decodes one stream entry and hands its parts to `load`; throws on an entry that is not a handover message. */
  apply(payload: Uint8Array, load: (m: HandoverMessage, part: number, data: Uint8Array, delta: boolean) => void): void {
    const m = decodeValue<HandoverMessage>(payload);
    if (!m || !Array.isArray(m.covers) || !Array.isArray(m.parts) || typeof m.vertexId !== 'string')
      throw new Error('handover entry is not a handover message');
    const id = `${m.scope}:${m.vertexId}`;
    if (typeof m.watermark === 'number') this.watermark = Math.min(this.watermark ?? Infinity, m.watermark);
    const missing = this.missing.get(id);
    for (const [part, data, delta] of m.parts) {
      // A part this receiver does not wait for (a duplicate, or not in its new range) would overwrite newer state.
      if (!missing?.has(part)) continue;
      load(m, part, data, delta === true);
      this.bytes += data.byteLength;
      this.loaded.add(`${id}:${part}`);
    }
    if (!missing) return;
    for (const part of m.covers) missing.delete(part);
    if (missing.size === 0) this.missing.delete(id);
  }
}
