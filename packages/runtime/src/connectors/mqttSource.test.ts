import { randomUUID } from 'node:crypto';
import type { Rec, Vertex } from '@keyflow/core';
import { Redis } from 'ioredis';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisKeys } from '../keys.ts';
import { silentLogger, type Logger } from '../logger.ts';
import { MqttSource } from './mqttSource.ts';
import { createSource, type ConnectorEnv } from './registry.ts';

// The local Mosquitto (2.0, default limits: max_inflight_messages 20, max_queued_messages 1000).
const url = 'mqtt://127.0.0.1:1883';
let publisher: MqttClient;
const open: MqttSource[] = [];
const clientIds = new Set<string>();

beforeAll(async () => {
  publisher = await connectAsync(url, { protocolVersion: 5 });
});
afterAll(async () => {
  await Promise.all(open.map((s) => s.close()));
  await publisher.endAsync();
  // The sessions outlive their sources by design: end them, so test runs leave nothing on the broker.
  for (const clientId of clientIds) {
    const c = await connectAsync(url, { clientId, protocolVersion: 5, clean: true, properties: { sessionExpiryInterval: 0 } });
    await c.endAsync();
  }
});

interface Emitted {
  split: number;
  rec: Rec;
}

function setup(topicNames: string[]) {
  const base = `keyflow-test/${randomUUID()}`;
  const topics = topicNames.map((t) => `${base}/${t}`);
  const jobId = randomUUID();
  const deadLetters: { record: unknown; reason: string }[] = [];
  const warnings: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (_fields, msg) => void warnings.push(msg) };
  const source = (o: { index?: number; parallelism?: number; job?: string } = {}) => {
    const env: ConnectorEnv = {
      index: o.index ?? 0,
      parallelism: o.parallelism ?? 1,
      sink: { jobId: o.job ?? jobId, attempt: 1, index: o.index ?? 0 },
      redis: new Redis({ lazyConnect: true }),
      keys: redisKeys('t'),
      databaseUrl: 'postgresql://nowhere/db',
      deadLetter: (record, reason) => void deadLetters.push({ record, reason }),
      connection: async (name) => ({ name, kind: 'mqtt', url }),
      logger,
    };
    const vertex = { id: 'in', type: 'mqtt', name: 'in', parallelism: 1, settings: { connection: 'local', topics: topics.join(',') } };
    const s = createSource(vertex as unknown as Vertex, env);
    expect(s).toBeInstanceOf(MqttSource);
    const mqtt = s as MqttSource;
    for (const split of mqtt.splits) clientIds.add(mqtt.clientId(split));
    open.push(mqtt);
    return mqtt;
  };
  const publish = (topic: string, ...payloads: (string | object)[]) =>
    Promise.all(payloads.map((p) => publisher.publishAsync(`${base}/${topic}`, typeof p === 'string' ? p : JSON.stringify(p), { qos: 1 })));
  return { source, publish, deadLetters, warnings };
}

/** Emits from the source until `done` holds, failing at the deadline. */
async function readUntil(source: MqttSource, got: Emitted[], done: () => boolean, what: string, ms = 15_000): Promise<void> {
  const out = { emit: (split: number, rec: Rec) => void got.push({ split, rec }) };
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${got.length} emitted)`);
    if (source.emit(1000, out).produced === 0) await new Promise((r) => setTimeout(r, 10));
  }
}

/** Waits until `done` holds, the source's readers running but nothing emitted. */
async function waitFor(source: MqttSource, done: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    source.emit(0, { emit: () => {} });
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Until every split the source holds has its session open and subscribed (what a test publishes after is delivered). */
function subscribed(source: MqttSource): Promise<void> {
  return waitFor(source, () => source.lag().length === source.splits.length, 'the sessions to open');
}

const ns = (got: Emitted[]) => got.map((e) => e.rec.n);

describe('MQTT source', () => {
  it('reads QoS 1 messages as records, each with the split of its topic filter, a wildcard filter included', async () => {
    const { source, publish } = setup(['a', '+/x']);
    const s = source();
    expect(s.splits).toEqual([0, 1]);
    await subscribed(s);
    await publish('a', { n: 1 }, { n: 2 });
    await publish('b/x', { n: 3 });
    await publish('c/x', { n: 4 });
    const got: Emitted[] = [];
    await readUntil(s, got, () => got.length === 4, '4 records');
    expect(got.filter((e) => e.split === 0).map((e) => e.rec)).toEqual([{ n: 1 }, { n: 2 }]);
    expect(got.filter((e) => e.split === 1).map((e) => e.rec.n)).toEqual([3, 4]);
    // Each split's offset counts the messages it emitted (in whichever order the splits' first messages came).
    expect([...s.offsets].sort(([a], [b]) => a - b)).toEqual([
      [0, 2],
      [1, 2],
    ]);
    // Nothing is acknowledged before a checkpoint completed: all four are in flight.
    expect(s.lag()).toEqual([
      { split: 0, name: expect.stringMatching(/\/a$/), messages: 2 },
      { split: 1, name: expect.stringMatching(/\/\+\/x$/), messages: 2 },
    ]);
    s.snapshot(1);
    await s.completed(1);
    expect(s.lag().map((l) => l.messages)).toEqual([0, 0]);
  });

  it('after a crash redelivers exactly what no completed checkpoint covered, and never what one did', async () => {
    const { source, publish, warnings } = setup(['t']);
    const a = source();
    await subscribed(a);
    const got: Emitted[] = [];
    await publish('t', ...[0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => ({ n })));
    await readUntil(a, got, () => got.length === 10, 'messages 0-9');
    a.snapshot(1);
    const checkpoint1 = a.offsets.get(0);
    expect(checkpoint1).toBe(10);
    await publish('t', ...[10, 11, 12, 13, 14].map((n) => ({ n })));
    await readUntil(a, got, () => got.length === 15, 'messages 10-14');
    a.snapshot(2);
    await a.completed(1);
    expect(a.lag()[0]!.messages).toBe(5);
    // The crash: checkpoint 2 never completes.
    await a.close();

    // The recovery restores checkpoint 1; the same client id resumes the session, which kept 10-14 unacknowledged.
    const b = source();
    b.offsets.set(0, checkpoint1);
    await subscribed(b);
    // The broker resends what was in flight as the session resumes; a checkpoint before any of it was emitted covers none of it.
    await waitFor(b, () => b.lag()[0]!.messages === 5, 'the redelivery');
    b.snapshot(2);
    await b.completed(2);
    expect(b.lag()[0]!.messages).toBe(5);
    const again: Emitted[] = [];
    // The broker resends what was in flight first: once a message published now arrives, all of it came.
    await publish('t', { n: 15 });
    await readUntil(b, again, () => ns(again).includes(15), 'message 15');
    expect(ns(again)).toEqual([10, 11, 12, 13, 14, 15]);
    // The count goes on from the restored offset.
    expect(b.offsets.get(0)).toBe(16);
    b.snapshot(3);
    await b.completed(3);
    await b.close();

    // Checkpoint 3 completed: a restart from it gets nothing again.
    const c = source();
    c.offsets.set(0, 16);
    await subscribed(c);
    const after: Emitted[] = [];
    await publish('t', { n: 16 });
    await readUntil(c, after, () => ns(after).includes(16), 'message 16');
    expect(ns(after)).toEqual([16]);
    expect(warnings).toEqual([]);
  });

  it('keeps its session while no subtask reads it: what was published meanwhile arrives when it comes back', async () => {
    const { source, publish, warnings } = setup(['t']);
    const a = source();
    await subscribed(a);
    // A new job's split starts counting at 0, kept by checkpoints like any offset.
    expect(a.offsets.get(0)).toBe(0);
    a.snapshot(1);
    await a.completed(1);
    await a.close();

    await publish('t', { n: 1 }, { n: 2 }, { n: 3 });
    const b = source();
    b.offsets.set(0, 0);
    const got: Emitted[] = [];
    await readUntil(b, got, () => got.length === 3, 'the messages published while it was down');
    expect(ns(got).sort()).toEqual([1, 2, 3]);
    expect(warnings).toEqual([]);

    // A restored split whose session the broker does not have (here: another job's client id) is said to have lost messages.
    const c = source({ job: randomUUID() });
    c.offsets.set(0, 5);
    await subscribed(c);
    expect(warnings).toEqual([expect.stringMatching(/no session for the split/)]);
  });

  it('dead-letters a message that is no JSON object, reads on, and acknowledges it with its checkpoint', async () => {
    const { source, publish, deadLetters } = setup(['t']);
    const s = source();
    await subscribed(s);
    await publish('t', 'not json');
    await publish('t', '[1,2]');
    await publish('t', { ok: 1 });
    const got: Emitted[] = [];
    await readUntil(s, got, () => got.length === 1, 'the JSON object');
    expect(got.map((e) => e.rec)).toEqual([{ ok: 1 }]);
    expect(deadLetters).toEqual([
      { record: 'not json', reason: expect.stringMatching(/^not valid JSON/) },
      { record: '[1,2]', reason: expect.stringMatching(/^not a JSON object.*an array/) },
    ]);
    expect(s.offsets.get(0)).toBe(3);
    s.snapshot(1);
    await s.completed(1);
    expect(s.lag()[0]!.messages).toBe(0);
  });

  it("holds far more than Mosquitto's default 20 unacknowledged messages per split: MQTT 5's Receive Maximum lifts it", async () => {
    // With acknowledgements only at checkpoint completion, 20 in flight (Mosquitto's max_inflight_messages) would cap
    // a split at 20 messages per checkpoint, and 1000 queued behind them (max_queued_messages): of these 2000, 1020
    // would arrive and the broker would drop the rest. Asking for a Receive Maximum of 65535 lets all of them through.
    const { source, publish } = setup(['t']);
    const s = source();
    await subscribed(s);
    const total = 2000;
    await publish('t', ...Array.from({ length: total }, (_, n) => ({ n })));
    const got: Emitted[] = [];
    await readUntil(s, got, () => got.length === total, `${total} messages without any checkpoint completing`);
    expect(new Set(ns(got)).size).toBe(total);
    expect(s.lag()[0]!.messages).toBe(total);
    s.snapshot(1);
    await s.completed(1);
    expect(s.lag()[0]!.messages).toBe(0);
  });

  it("moves a split's session to its new owner at a rescale: what the old owner did not acknowledge follows it", async () => {
    const { source, publish } = setup(['a', 'b']);
    const a = source();
    await subscribed(a);
    await publish('a', { n: 1 }, { n: 2 });
    await publish('b', { n: 3 }, { n: 4 });
    const got: Emitted[] = [];
    await readUntil(a, got, () => got.length === 4, '4 records');
    // The rescale's barrier (checkpoint 1), then 1 → 2: split 1 goes to the new subtask with its offset.
    a.snapshot(1);
    a.assign(a.splitsFor(0, 2));
    const b = source({ index: 1, parallelism: 2 });
    expect(b.splits).toEqual([1]);
    b.offsets.set(1, a.offsets.get(1));
    a.settle();
    // Checkpoint 1 completes only after the old owner closed split 1's session: its two messages come again.
    await a.completed(1);
    expect(a.lag()).toEqual([{ split: 0, name: expect.stringMatching(/\/a$/), messages: 0 }]);
    await subscribed(b);
    const moved: Emitted[] = [];
    await publish('b', { n: 5 });
    await readUntil(b, moved, () => ns(moved).includes(5), 'message 5');
    expect(moved.map((e) => [e.split, e.rec.n])).toEqual([
      [1, 3],
      [1, 4],
      [1, 5],
    ]);
    expect(b.clientId(1)).toBe(a.clientId(1));
  });
});
