import { decodeValue, encodeValue } from '@keyflow/core';
import type { Redis } from 'ioredis';

/**
 * A rescale's direct state handover: an old owner sends the key groups (or source splits) that leave it
 * straight to their new owner over a Redis stream, the same bytes it writes into the rescale checkpoint, so
 * the new owner goes on without waiting for that checkpoint to be written and completed. Consistency still
 * rests on the checkpoint: until it completes, a failure recovers the whole job from the one before, at the
 * old parallelism.
 */
export interface HandoverMessage {
  /** Index of the sending (old) subtask. */
  from: number;
  vertexId: string;
  scope: 'KEYED' | 'OPERATOR';
  /** Every part this message accounts for, also those without state (which `parts` leaves out). */
  covers: number[];
  parts: [part: number, data: Uint8Array][];
}

/** Stream entries of at most about this many bytes, so the receiver decodes while the sender still encodes. */
export const HANDOVER_SLICE_BYTES = 512 * 1024;
/** A handover nobody reads (its receiver died) goes away on its own. */
const HANDOVER_TTL_MS = 10 * 60_000;

/**
 * Sends `parts` to one receiver in slices: `snapshot` serializes some of them on demand, so encoding, sending
 * and the receiver's decoding overlap. Resolves once Redis holds every slice.
 */
export async function sendHandover(
  redis: Redis,
  key: string,
  head: Pick<HandoverMessage, 'from' | 'vertexId' | 'scope'>,
  covers: readonly number[],
  snapshot: (parts: number[]) => Map<number, Uint8Array>,
  sliceBytes = HANDOVER_SLICE_BYTES,
): Promise<{ bytes: number; parts: number }> {
  const sends: Promise<unknown>[] = [];
  let bytes = 0;
  let sent = 0;
  let slice: number[] = [];
  let parts: [number, Uint8Array][] = [];
  let pending = 0;
  const flush = () => {
    sends.push(redis.xadd(key, '*', 'm', encodeValue({ ...head, covers: slice, parts } satisfies HandoverMessage)));
    slice = [];
    parts = [];
    pending = 0;
  };
  for (const part of covers) {
    slice.push(part);
    for (const [p, data] of snapshot([part])) {
      parts.push([p, data]);
      pending += data.byteLength;
      bytes += data.byteLength;
      sent++;
    }
    if (pending >= sliceBytes) flush();
  }
  if (slice.length || sends.length === 0) flush();
  sends.push(redis.pexpire(key, HANDOVER_TTL_MS));
  await Promise.all(sends);
  return { bytes, parts: sent };
}

/** What one receiver still waits for, per operator and scope, and what it loaded. */
export class HandoverReceiver {
  private readonly missing = new Map<string, Set<number>>();
  bytes = 0;
  parts = 0;

  constructor(expected: { vertexId: string; scope: HandoverMessage['scope']; parts: Iterable<number> }[]) {
    for (const e of expected) {
      const set = new Set(e.parts);
      if (set.size) this.missing.set(`${e.scope}:${e.vertexId}`, set);
    }
  }

  get done(): boolean {
    return this.missing.size === 0;
  }

  /** Decodes one stream entry and hands its parts to `load`; throws on an entry that is not a handover message. */
  apply(payload: Uint8Array, load: (m: HandoverMessage, part: number, data: Uint8Array) => void): void {
    const m = decodeValue<HandoverMessage>(payload);
    if (!m || !Array.isArray(m.covers) || !Array.isArray(m.parts) || typeof m.vertexId !== 'string')
      throw new Error('handover entry is not a handover message');
    const id = `${m.scope}:${m.vertexId}`;
    const missing = this.missing.get(id);
    for (const [part, data] of m.parts) {
      // A part this receiver does not wait for (a duplicate, or not in its new range) would overwrite newer state.
      if (!missing?.has(part)) continue;
      load(m, part, data);
      this.bytes += data.byteLength;
      this.parts++;
    }
    if (!missing) return;
    for (const part of m.covers) missing.delete(part);
    if (missing.size === 0) this.missing.delete(id);
  }
}
