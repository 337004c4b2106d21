import { randomBytes } from 'node:crypto';
import { decodeValue, encodeValue, KeyedStateBackend, keyGroupFor } from '@keyflow/core';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { HandoverReceiver, sendHandover, type HandoverMessage, type HandoverPart } from './handover.ts';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const prefix = `${process.env.KEYFLOW_PREFIX ?? 'kft'}-handover-${randomBytes(3).toString('hex')}`;
const MAX_P = 128;
const SLICE = 10_000;
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

/** A backend with `n` keys whose count is the key's number. */
function filled(n: number): KeyedStateBackend {
  const b = new KeyedStateBackend(MAX_P);
  const count = b.valueState<number>('count');
  for (let i = 0; i < n; i++) {
    b.setCurrentKey(`user-${i}`);
    count.update(i);
  }
  return b;
}

function part(b: KeyedStateBackend, kg: number): HandoverPart | undefined {
  const data = b.snapshot([kg]).get(kg);
  return data && [kg, data];
}

async function readAll(key: string): Promise<Buffer[]> {
  const entries = (await redis.xrangeBuffer(key, '-', '+')) as [Buffer, Buffer[]][];
  return entries.map(([, fields]) => fields[1]!);
}

describe('state handover', () => {
  it('moves key groups from two senders to one receiver in slices, and the receiver holds exactly them', async () => {
    const key = `${prefix}:a`;
    const senders = [filled(60_000), filled(60_000)];
    // Sender 0 gives key groups 10..19 (and 20, which holds nothing), sender 1 gives 70..79.
    const covers = [[...Array.from({ length: 10 }, (_, i) => 10 + i), 20], Array.from({ length: 10 }, (_, i) => 70 + i)];
    senders[0]!.detach([20]);
    const sent = await Promise.all(
      senders.map((b, from) =>
        sendHandover(redis, key, { from, vertexId: 'count', scope: 'KEYED' }, covers[from]!, (kg) => part(b, kg), { sliceBytes: SLICE }),
      ),
    );
    expect(sent.map((s) => s.parts)).toEqual([10, 10]);
    const entries = await readAll(key);
    // About 4 kB per key group and slices of 10 kB: each sender's ten groups take several entries, none
    // larger than a slice plus the one group that filled it.
    expect(entries.length).toBeGreaterThanOrEqual(6);
    expect(Math.max(...entries.map((e) => e.byteLength))).toBeLessThan(SLICE + 8_000);
    expect(await redis.pttl(key)).toBeGreaterThan(0);

    const into = new KeyedStateBackend(MAX_P);
    const receiver = new HandoverReceiver([{ vertexId: 'count', scope: 'KEYED', parts: [...covers[0]!, ...covers[1]!] }]);
    for (const [i, e] of entries.entries()) {
      expect(receiver.done).toBe(false);
      receiver.apply(e, (_, part, data) => into.restore(part, data));
      if (i === entries.length - 1) expect(receiver.done).toBe(true);
    }
    expect(receiver.parts).toBe(20);
    expect(receiver.bytes).toBe(sent[0]!.bytes + sent[1]!.bytes);
    const moved = new Set([...covers[0]!, ...covers[1]!]);
    let expected = 0;
    const count = into.valueState<number>('count');
    for (let i = 0; i < 60_000; i++) {
      const kg = keyGroupFor(`user-${i}`, MAX_P);
      into.setCurrentKey(`user-${i}`, kg);
      if (moved.has(kg) && kg !== 20) {
        expected++;
        expect(count.value()).toBe(i);
      } else expect(count.value()).toBeUndefined();
    }
    expect(into.keyCount()).toBe(expected);
  });

  it('is done only when every expected part is covered, per operator and scope, empty parts included', () => {
    const receiver = new HandoverReceiver([
      { vertexId: 'count', scope: 'KEYED', parts: [1, 2] },
      { vertexId: 'events', scope: 'OPERATOR', parts: [5] },
      { vertexId: 'other', scope: 'KEYED', parts: [] },
    ]);
    const msg = (m: Partial<HandoverMessage>) => encodeValue({ from: 0, vertexId: 'count', scope: 'KEYED', covers: [], parts: [], ...m });
    const loaded: string[] = [];
    const load = (m: HandoverMessage, part: number) => loaded.push(`${m.scope}:${m.vertexId}:${part}`);
    receiver.apply(msg({ covers: [1], parts: [[1, Buffer.from('x')]] }), load);
    // Same part numbers, other operator or scope: not what count waits for.
    receiver.apply(msg({ vertexId: 'events', covers: [2], parts: [[2, Buffer.from('y')]] }), load);
    receiver.apply(msg({ scope: 'OPERATOR', covers: [2] }), load);
    expect(receiver.done).toBe(false);
    receiver.apply(msg({ covers: [2] }), load);
    expect(receiver.done).toBe(false);
    receiver.apply(msg({ vertexId: 'events', scope: 'OPERATOR', covers: [5], parts: [[5, encodeValue({ offset: 9 })]] }), load);
    expect(receiver.done).toBe(true);
    expect(loaded).toEqual(['KEYED:count:1', 'OPERATOR:events:5']);
  });

  it('loads a part once: a repeated slice cannot overwrite state loaded before it', () => {
    const receiver = new HandoverReceiver([{ vertexId: 'count', scope: 'KEYED', parts: [1, 2] }]);
    const slice = encodeValue({ from: 0, vertexId: 'count', scope: 'KEYED', covers: [1], parts: [[1, Buffer.from('x')]] });
    let loads = 0;
    receiver.apply(slice, () => loads++);
    receiver.apply(slice, () => loads++);
    expect(loads).toBe(1);
  });

  it("tells the receiver the lowest watermark its senders had at the barrier, where a new subtask's event time starts", () => {
    const receiver = new HandoverReceiver([{ vertexId: 'w', scope: 'KEYED', parts: [1, 2, 3] }]);
    expect(receiver.watermark).toBeUndefined();
    const at = (from: number, part: number, watermark?: number) =>
      encodeValue({ from, vertexId: 'w', scope: 'KEYED', covers: [part], parts: [], ...(watermark !== undefined && { watermark }) });
    receiver.apply(at(0, 1, 5000), () => {});
    receiver.apply(at(1, 2, 4200), () => {});
    // A pre-copy (no watermark) says nothing about it.
    receiver.apply(at(2, 3), () => {});
    expect(receiver.watermark).toBe(4200);
  });

  it('rejects an entry that is not a handover message', () => {
    const receiver = new HandoverReceiver([{ vertexId: 'count', scope: 'KEYED', parts: [1] }]);
    expect(() => receiver.apply(encodeValue({ hello: 'world' }), () => {})).toThrow('handover entry is not a handover message');
    expect(() => receiver.apply(Buffer.from([0xc1]), () => {})).toThrow();
  });

  it('sends one message even when nothing leaves, so the receiver can tell it is complete', async () => {
    const key = `${prefix}:b`;
    const sent = await sendHandover(redis, key, { from: 1, vertexId: 'count', scope: 'KEYED' }, [3, 4], () => undefined);
    expect(sent).toEqual({ bytes: 0, parts: 0 });
    const receiver = new HandoverReceiver([{ vertexId: 'count', scope: 'KEYED', parts: [3, 4] }]);
    for (const e of await readAll(key)) receiver.apply(e, () => {});
    expect(receiver.done).toBe(true);
  });
});

describe('state handover with a pre-copy', () => {
  it('a pre-copy ahead of the barrier plus deltas at it leave the receiver with the state at the barrier', async () => {
    const key = `${prefix}:pre`;
    const b = filled(60_000);
    const moving = Array.from({ length: 16 }, (_, i) => 100 + i);
    b.trackChanges(moving);
    const sentParts: number[] = [];
    await sendHandover(
      redis,
      key,
      { from: 0, vertexId: 'count', scope: 'KEYED' },
      moving,
      (kg) => {
        const data = b.copyTracked(kg);
        return data && [kg, data];
      },
      { sliceBytes: SLICE, precopy: true, between: () => new Promise((r) => setImmediate(r)), onSent: (p) => sentParts.push(...p) },
    );
    expect(sentParts).toEqual(moving.slice(0, sentParts.length));
    // Processing goes on after the copy: every third key changes, some keys are new.
    const count = b.valueState<number>('count');
    for (let i = 0; i < 70_000; i += 3) {
      b.setCurrentKey(`user-${i}`);
      count.update(-i);
    }
    const copied = new Set(sentParts);
    await sendHandover(redis, key, { from: 0, vertexId: 'count', scope: 'KEYED' }, moving, (kg) => {
      if (copied.has(kg)) return [kg, b.delta(kg), true];
      const data = b.snapshot([kg]).get(kg);
      return data && [kg, data];
    });

    const into = new KeyedStateBackend(MAX_P);
    const receiver = new HandoverReceiver([{ vertexId: 'count', scope: 'KEYED', parts: moving }]);
    for (const e of await readAll(key)) receiver.apply(e, (_, kg, data, delta) => (delta ? into.applyDelta(kg, data) : into.restore(kg, data)));
    expect(receiver.done).toBe(true);
    expect(receiver.parts).toBe(moving.length); // each group once, though it came as a copy and a delta
    const got = into.valueState<number>('count');
    let n = 0;
    for (let i = 0; i < 70_000; i++) {
      const kg = keyGroupFor(`user-${i}`, MAX_P);
      if (!moving.includes(kg)) continue;
      b.setCurrentKey(`user-${i}`, kg);
      into.setCurrentKey(`user-${i}`, kg);
      expect(got.value()).toBe(count.value());
      if (count.value() !== undefined) n++;
    }
    expect(into.keyCount()).toBe(n);
  });

  it('stops between slices when told, reporting only the slices it sent', async () => {
    const b = filled(60_000);
    const sentParts: number[] = [];
    let slices = 0;
    await sendHandover(
      redis,
      `${prefix}:stop`,
      { from: 0, vertexId: 'count', scope: 'KEYED' },
      Array.from({ length: 40 }, (_, i) => i),
      (kg) => part(b, kg),
      {
        sliceBytes: SLICE,
        precopy: true,
        between: async () => void slices++,
        stop: () => slices >= 2,
        onSent: (p) => sentParts.push(...p),
      },
    );
    expect(slices).toBe(2);
    const entries = await readAll(`${prefix}:stop`);
    expect(entries).toHaveLength(2);
    const covered = entries.flatMap((e) => (decodeValue(e) as HandoverMessage).parts.map(([kg]) => kg));
    expect(covered).toEqual(sentParts);
    expect(entries.every((e) => (decodeValue(e) as HandoverMessage).covers.length === 0)).toBe(true);
  });
});
