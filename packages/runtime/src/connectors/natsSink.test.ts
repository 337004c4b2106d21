import { randomBytes, randomUUID } from 'node:crypto';
import { natsSinkSettings, type Rec, type Vertex } from '@keyflow/core';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { redisKeys } from '../keys.ts';
import { silentLogger, type Logger } from '../logger.ts';
import type { ConnectionProfile } from './connection.ts';
import type { OutMessage } from './messageSink.ts';
import { natsConnect } from './nats.ts';
import { NatsSink } from './natsSink.ts';
import { SinkDriver } from '../subtask/sinkDriver.ts';
import type { SubtaskContext } from '../subtask/context.ts';
import { createSink, type ConnectorEnv } from './registry.ts';
import { SinkFencedError, type SinkContext } from './sink.ts';

const profile: ConnectionProfile = { name: 'test', kind: 'nats', url: 'nats://127.0.0.1:4222' };
const databaseUrl = process.env.KEYFLOW_SINK_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
let nc: NatsConnection;
let jsm: JetStreamManager;
let js: JetStreamClient;
const streams: string[] = [];
const sinks: NatsSink[] = [];

beforeAll(async () => {
  nc = await natsConnect(profile);
  jsm = await jetstreamManager(nc);
  js = jetstream(nc);
});
afterEach(async () => {
  await Promise.all(sinks.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await Promise.all(streams.map((s) => jsm.streams.delete(s).catch(() => {})));
  await nc.close();
});

/** A sink that can publish messages of a test's choosing, or fails right after publishing (before the outbox's delete). */
class TestSink extends NatsSink {
  crashAfterPublish = false;

  send(messages: OutMessage[]): Promise<void> {
    return this.publish(messages);
  }

  protected override async publish(messages: OutMessage[]): Promise<void> {
    await super.publish(messages);
    if (this.crashAfterPublish) throw new Error('crashed after publishing');
  }
}

/** A stream of its own for a test, a sink factory for its subject, and what the stream holds. */
async function setup(config: Partial<StreamConfig> = {}) {
  const id = randomBytes(4).toString('hex');
  const stream = `kft_nats_sink_${id}`;
  await jsm.streams.add({ name: stream, subjects: [`kft.${id}.>`], ...config });
  streams.push(stream);
  const subject = `kft.${id}.out`;
  const jobId = randomUUID();
  const logged: { fields: object; msg: string }[] = [];
  const log: Logger = { ...silentLogger, info: (fields, msg) => logged.push({ fields, msg }) };
  const sink = (ctx: Partial<SinkContext> = {}, settings: Record<string, unknown> = {}) => {
    const s = new TestSink(
      natsSinkSettings.parse({ connection: 'test', subject, ...settings }),
      async () => profile,
      databaseUrl,
      { jobId, vertexId: 'sink', attempt: 1, index: 0, recoverFrom: 0, ...ctx },
      log,
    );
    sinks.push(s);
    return s;
  };
  return { stream, subject, jobId, sink, logged, count: () => count(stream), stored: () => stored(stream) };
}

async function count(stream: string): Promise<number> {
  return (await jsm.streams.info(stream)).state.messages;
}

/** Every message of the stream, in order: its Nats-Msg-Id and its record. */
async function stored(stream: string): Promise<{ id: string | undefined; record: Rec }[]> {
  const total = await count(stream);
  const consumer = await js.consumers.get(stream);
  const out: { id: string | undefined; record: Rec }[] = [];
  try {
    while (out.length < total) {
      const batch = await consumer.fetch({ max_messages: total - out.length, expires: 2000 });
      for await (const m of batch) out.push({ id: m.headers?.get('Nats-Msg-Id'), record: m.json<Rec>() });
    }
  } finally {
    await consumer.delete().catch(() => {});
  }
  return out;
}

const rec = (n: number) => ({ n }) as Rec;

describe('exactly-once NATS sink', () => {
  it('publishes only when the checkpoint completes, each message once, with an id stable across replays', async () => {
    const { sink, count, stored, jobId } = await setup();
    const a = sink();
    await a.open();
    a.process(rec(1));
    a.process(rec(2));
    await a.preCommit(1);
    a.process(rec(3));
    await a.preCommit(2);
    a.process(rec(4)); // after barrier 2: belongs to checkpoint 3
    expect(await count()).toBe(0);

    await a.commit(1);
    expect(await stored()).toEqual([
      { id: `${jobId}.sink.1.1.0.0.0`, record: rec(1) },
      { id: `${jobId}.sink.1.1.0.0.1`, record: rec(2) },
    ]);
    await a.commit(2);
    await a.commit(2); // a repeated completion publishes nothing
    expect((await stored()).map((m) => m.record)).toEqual([rec(1), rec(2), rec(3)]);
  });

  it('leaves one copy of outbox rows published again after a crash before their delete', async () => {
    const { sink, count, stored, logged } = await setup();
    const a = sink();
    await a.open();
    // More than one window of publishes in flight, to see them pipelined and kept in order.
    for (let n = 0; n < 2500; n++) a.process(rec(n));
    await a.preCommit(1);
    a.crashAfterPublish = true;
    await expect(a.commit(1)).rejects.toThrow('crashed after publishing');
    expect(await count()).toBe(2500);

    // The recovery's attempt republishes the row the crash left in the outbox, under the same ids.
    const b = sink({ attempt: 2, recoverFrom: 1 });
    await b.open();
    expect(await count()).toBe(2500);
    expect((await stored()).map((m) => m.record.n)).toEqual([...Array(2500).keys()]);
    expect(logged).toContainEqual({ fields: expect.objectContaining({ duplicates: 2500 }), msg: expect.stringContaining('duplicates') });
    // The row is gone: a later completion publishes nothing again.
    await b.commit(1);
    expect(await count()).toBe(2500);
  });

  it('publishes a message whose id the stream saw once only', async () => {
    const { sink, count } = await setup();
    const a = sink();
    await a.open();
    const messages = [0, 1, 2].map((i) => ({ id: `same-${i}`, payload: JSON.stringify(rec(i)) }));
    await a.send(messages);
    await a.send(messages);
    await a.send([...messages, { id: 'same-3', payload: JSON.stringify(rec(3)) }]);
    expect(await count()).toBe(4);
  });

  it('fences a zombie off: an older attempt publishes nothing once a newer one claimed the sink', async () => {
    const { sink, count } = await setup();
    const zombie = sink({ attempt: 1 });
    await zombie.open();
    zombie.process(rec(1));
    await zombie.preCommit(1);
    // The recovery restarts from no checkpoint: what attempt 1 pre-committed is discarded (its records are replayed).
    const current = sink({ attempt: 2, recoverFrom: 0 });
    await current.open();
    await expect(zombie.commit(1)).rejects.toBeInstanceOf(SinkFencedError);
    zombie.process(rec(2));
    await expect(zombie.preCommit(2)).rejects.toBeInstanceOf(SinkFencedError);
    expect(await count()).toBe(0);

    current.process(rec(1));
    await current.preCommit(1);
    await current.commit(1);
    expect(await count()).toBe(1);
  });

  it('refuses a stream whose duplicate window is shorter than a recovery may take, saying so', async () => {
    const { sink, stream } = await setup({ duplicate_window: 10_000_000_000 });
    await expect(sink().open()).rejects.toThrow(
      `stream '${stream}' drops duplicates for 10 s only: exactly-once needs a duplicate window of at least 120 s`,
    );
    // At least once needs none.
    await sink({}, { delivery: 'at-least-once' }).open();
  });

  it('fails to open when no stream captures its subject', async () => {
    const { sink } = await setup();
    const subject = `kft.nowhere.${randomBytes(4).toString('hex')}`;
    await expect(sink({}, { subject }).open()).rejects.toThrow(`no stream on nats://127.0.0.1:4222 captures subject '${subject}'`);
  });
});

describe('at-least-once NATS sink', () => {
  it("is made by the registry from a 'natsSink' vertex, publishing through its named connection", async () => {
    const { subject, count } = await setup();
    const redis = new Redis({ lazyConnect: true });
    const env: ConnectorEnv = {
      index: 0,
      parallelism: 1,
      sink: { jobId: randomUUID(), attempt: 1, index: 0 },
      redis,
      keys: redisKeys('t'),
      databaseUrl,
      deadLetter: () => {},
      connection: async (name) => (name === 'test' ? profile : Promise.reject(new Error(`no connection ${name}`))),
      logger: silentLogger,
    };
    const vertex = { id: 'v', type: 'natsSink', name: 'out', parallelism: 1, settings: { connection: 'test', subject, delivery: 'at-least-once' } };
    const s = createSink(vertex as unknown as Vertex, env);
    expect(s).toBeInstanceOf(NatsSink);
    sinks.push(s as NatsSink);
    await s.open();
    s.process(rec(1));
    await s.flush();
    expect(await count()).toBe(1);
    redis.disconnect();
  });

  it('publishes what it holds on flush and at barriers, without waiting for checkpoints', async () => {
    const { sink, stored, jobId } = await setup();
    const a = sink({}, { delivery: 'at-least-once' });
    await a.open();
    a.process(rec(1));
    a.process(rec(2));
    await a.flush();
    a.process(rec(3));
    await a.preCommit(1);
    expect(await stored()).toEqual([
      { id: `${jobId}.sink.1.0.live.0.0`, record: rec(1) },
      { id: `${jobId}.sink.1.0.live.0.1`, record: rec(2) },
      { id: `${jobId}.sink.1.0.live.2.0`, record: rec(3) },
    ]);
  });
});

describe('backpressure from an at-least-once sink (its driver)', () => {
  const deferred = () => {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    return { promise, resolve };
  };

  /** A sink whose broker takes messages only when the test lets it, or refuses them. */
  class HeldSink extends TestSink {
    private gate = deferred();
    refuse = 0;
    publishing = deferred();
    open_() {
      this.gate.resolve();
    }
    protected override async publish(messages: OutMessage[]): Promise<void> {
      this.publishing.resolve();
      if (this.refuse > 0) {
        this.refuse--;
        throw Object.assign(new Error('broker away'), { transient: true });
      }
      await this.gate.promise;
      await super.publish(messages);
    }
  }

  const driverFor = async (bound: number, settings: Record<string, unknown> = {}) => {
    const { subject, count, stream } = await setup();
    const s = new HeldSink(
      natsSinkSettings.parse({ connection: 'test', subject, delivery: 'at-least-once', ...settings }),
      async () => profile,
      databaseUrl,
      { jobId: randomUUID(), vertexId: 'sink', attempt: 1, index: 0, recoverFrom: 0 },
      silentLogger,
    );
    sinks.push(s);
    await s.open();
    const ctx = { log: silentLogger, outcome: undefined } as unknown as SubtaskContext;
    return { s, ctx, driver: new SinkDriver(ctx, [s], performance.now(), bound), count, stream };
  };

  it('makes processing wait while the sink holds more than its bound, until its broker took them', async () => {
    const { s, driver, count } = await driverFor(100);
    for (let i = 0; i < 250; i++) s.process(rec(i));
    expect(driver.overfull()).toBe(true);
    let relieved = false;
    const relieving = driver
      .relieve(
        () => performance.now(),
        () => false,
      )
      .then(() => (relieved = true));
    await s.publishing.promise;
    // The broker has not taken them: processing still waits, and says so (with what the sink holds).
    await new Promise((r) => setImmediate(r));
    expect(relieved).toBe(false);
    expect(driver.waiting(performance.now())).toMatchObject({ buffered: 0 });
    s.open_();
    await relieving;
    expect(driver.overfull()).toBe(false);
    expect(driver.waiting(performance.now())).toBeUndefined();
    expect(await count()).toBe(250);
  });

  it('retries a write the broker refused, holding processing meanwhile, and loses nor doubles a message', async () => {
    const { s, driver, count } = await driverFor(10);
    s.open_();
    s.refuse = 3;
    for (let i = 0; i < 50; i++) s.process(rec(i));
    await driver.relieve(
      () => performance.now(),
      () => false,
    );
    expect(s.refuse).toBe(0);
    expect(driver.overfull()).toBe(false);
    expect(await count()).toBe(50);
  });

  it('stops waiting once the subtask ends (fenced off or aborted) while the broker refuses', async () => {
    const { s, ctx, driver } = await driverFor(10);
    s.refuse = Infinity;
    for (let i = 0; i < 50; i++) s.process(rec(i));
    let ended = false;
    const relieving = driver.relieve(
      () => performance.now(),
      () => ended,
    );
    await s.publishing.promise;
    expect(driver.waiting(performance.now())?.buffered).toBe(50);
    ended = true;
    await relieving;
    expect(s.buffered()).toBe(50);
    expect(ctx.outcome).toBeUndefined();
  });

  it('never holds an exactly-once sink back: it writes only at the barrier, which waiting would keep from coming', async () => {
    const { s, driver } = await driverFor(10, { delivery: 'exactly-once' });
    for (let i = 0; i < 50; i++) s.process(rec(i));
    expect(s.buffered()).toBe(50);
    expect(driver.overfull()).toBe(false);
    await driver.relieve(
      () => performance.now(),
      () => false,
    );
  });

  it('holds nothing back while a rescale gates its writes (the rescale checkpoint must complete first)', async () => {
    const { s, driver } = await driverFor(10);
    for (let i = 0; i < 50; i++) s.process(rec(i));
    driver.gate = 7;
    expect(driver.overfull()).toBe(false);
    await driver.relieve(
      () => performance.now(),
      () => false,
    );
    expect(s.buffered()).toBe(50);
  });
});
