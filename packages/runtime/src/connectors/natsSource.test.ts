import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual as equal } from 'node:util';
import { natsSourceSettings, type Vertex } from '@keyflow/core';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { redisKeys } from '../keys.ts';
import { silentLogger } from '../logger.ts';
import type { ConnectionProfile } from './connection.ts';
import { natsConnect } from './nats.ts';
import { NatsSource } from './natsSource.ts';
import { createSource, type ConnectorEnv } from './registry.ts';
import { checkpointSplits, emitUntil, rescaleSource, restoreSplits, type Emitted } from './testing/sourceDriver.ts';

const profile: ConnectionProfile = { name: 'test', kind: 'nats', url: 'nats://127.0.0.1:4222' };
let nc: NatsConnection;
let jsm: JetStreamManager;
let js: JetStreamClient;
const streams: string[] = [];
const sources: NatsSource[] = [];

beforeAll(async () => {
  nc = await natsConnect(profile);
  jsm = await jetstreamManager(nc);
  js = jetstream(nc);
});
afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await Promise.all(streams.map((s) => jsm.streams.delete(s).catch(() => {})));
  await nc.close();
});

/** A stream of its own for a test: its name, and its subjects' prefix (no other stream captures them). */
async function makeStream(): Promise<{ stream: string; subject: (s: string) => string }> {
  const id = randomBytes(4).toString('hex');
  const stream = `kft_nats_source_${id}`;
  await jsm.streams.add({ name: stream, subjects: [`kft.${id}.>`] });
  streams.push(stream);
  return { stream, subject: (s) => `kft.${id}.${s}` };
}

/** How many consumers the stream has. */
async function consumers(stream: string): Promise<number> {
  return (await jsm.streams.info(stream)).state.consumer_count;
}

/** Publishes a message, returning its stream sequence. */
async function pub(subject: string, data: unknown): Promise<number> {
  return (await js.publish(subject, typeof data === 'string' ? data : JSON.stringify(data))).seq;
}

function source(settings: Record<string, unknown>, index = 0, parallelism = 1) {
  const deadLetters: { record: unknown; reason: string }[] = [];
  const warnings: { fields: object; msg: string }[] = [];
  const s = NatsSource.fromSettings(
    natsSourceSettings.parse({ connection: 'test', timestamps: 'ingestion', ...settings }),
    async () => profile,
    index,
    parallelism,
    (record, reason) => deadLetters.push({ record, reason }),
    { ...silentLogger, warn: (fields, msg) => warnings.push({ fields, msg }) },
  );
  sources.push(s);
  return Object.assign(s, { deadLetters, warnings });
}

/** The `n`s emitted (of `split`, when given), end markers left out. */
const ns = (got: Emitted[], split?: number) =>
  got.filter((g) => (split === undefined || g.split === split) && g.record.end !== true).map((g) => g.record.n as number);

/** Whether every split in `splits` emitted its end marker. */
const ended = (splits: number[]) => (got: Emitted[]) => splits.every((s) => got.some((g) => g.split === s && g.record.end === true));

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('NatsSource', () => {
  it('reads each subject filter as a split, in order, with the stream sequence of the last emitted message as its offset', async () => {
    const { stream, subject } = await makeStream();
    const seqs: number[][] = [[], []];
    for (let n = 0; n < 6; n++) seqs[n % 2]!.push(await pub(subject(`orders.${n % 2}`), { n }));
    await pub(subject('other'), { n: 99 }); // captured by the stream, in no split
    const s = source({ stream, subjects: `${subject('orders.0')},${subject('orders.1')}` });
    expect(s.splits).toEqual([0, 1]);
    await s.open();
    const got = await emitUntil(s, (g) => g.length === 6);
    expect(ns(got, 0)).toEqual([0, 2, 4]);
    expect(ns(got, 1)).toEqual([1, 3, 5]);
    expect(s.offsets.get(0)).toBe(seqs[0]!.at(-1));
    expect(s.offsets.get(1)).toBe(seqs[1]!.at(-1));
    expect(s.deadLetters).toEqual([]);
    // Its consumers are ephemeral: closing deletes them.
    expect(await consumers(stream)).toBe(2);
    await s.close();
    expect(await consumers(stream)).toBe(0);
  });

  it('reads the whole stream as one split when it names no subjects', async () => {
    const { stream, subject } = await makeStream();
    await pub(subject('a'), { n: 1 });
    const last = await pub(subject('b.c'), { n: 2 });
    const s = source({ stream });
    expect(s.splits).toEqual([0]);
    expect(ns(await emitUntil(s, (g) => g.length === 2))).toEqual([1, 2]);
    expect(s.offsets.get(0)).toBe(last);
  });

  it('resumes after a recovery right after the checkpointed sequences: nothing lost, nothing read twice', async () => {
    const { stream, subject } = await makeStream();
    const subjects = `${subject('s.0')},${subject('s.1')}`;
    for (let n = 0; n < 10; n++) await pub(subject(`s.${n % 2}`), { n });
    const a = source({ stream, subjects });
    await emitUntil(a, (g) => g.length === 10);
    const checkpoint = checkpointSplits(a);
    const atCheckpoint = [a.offsets.get(0), a.offsets.get(1)];
    // After the checkpoint: emitted, then rolled back by the failure, so read again.
    for (let n = 10; n < 14; n++) await pub(subject(`s.${n % 2}`), { n });
    await emitUntil(a, (g) => g.length === 4);
    await a.close();

    for (let n = 14; n < 16; n++) await pub(subject(`s.${n % 2}`), { n });
    const b = source({ stream, subjects });
    restoreSplits(b, checkpoint);
    expect([b.offsets.get(0), b.offsets.get(1)]).toEqual(atCheckpoint);
    for (const split of [0, 1]) await pub(subject(`s.${split}`), { end: true });
    const got = await emitUntil(b, ended([0, 1]));
    expect(ns(got, 0)).toEqual([10, 12, 14]);
    expect(ns(got, 1)).toEqual([11, 13, 15]);
  });

  it('moves splits at a rescale and back without losing or repeating a message', async () => {
    const { stream, subject } = await makeStream();
    const subjects = [0, 1, 2, 3].map((i) => subject(`r.${i}`)).join(',');
    let n = 0;
    /** Two messages on each of the four splits. */
    const publishRound = async () => {
      for (let i = 0; i < 8; i++, n++) await pub(subject(`r.${n % 4}`), { n });
    };

    // p = 1: one subtask reads all four splits.
    await publishRound();
    const a = source({ stream, subjects }, 0, 1);
    const got = await emitUntil(a, (g) => g.length === 8);
    await publishRound();

    // Rescale to p = 2 at a barrier: a keeps splits 0 and 1; b joins and gets 2 and 3 with a's offsets.
    const handover = checkpointSplits(a);
    rescaleSource(a, 0, 2, handover);
    const b = source({ stream, subjects }, 1, 2);
    expect([a.splits, b.splits]).toEqual([
      [0, 1],
      [2, 3],
    ]);
    restoreSplits(b, handover);
    expect([...a.offsets.keys()].sort()).toEqual([0, 1]);
    await publishRound();
    await emitUntil(a, (g) => g.length === 16, undefined, got);
    await emitUntil(b, (g) => g.length === 24, undefined, got);

    // Back to p = 1: b is scaled away, a gains its splits.
    const back = checkpointSplits(b);
    await b.close();
    rescaleSource(a, 0, 1, back);
    expect(a.splits).toEqual([0, 1, 2, 3]);
    await publishRound();
    for (let split = 0; split < 4; split++) await pub(subject(`r.${split}`), { end: true });
    await emitUntil(a, ended([0, 1, 2, 3]), undefined, got);
    expect(ns(got).sort((x, y) => x - y)).toEqual([...Array(32).keys()]);
  });

  it("starts a new job with 'latest' after the last message, and pins that start at once", async () => {
    const { stream, subject } = await makeStream();
    await pub(subject('x'), { n: 1 });
    const last = await pub(subject('x'), { n: 2 });
    const a = source({ stream, start: 'latest' });
    // Its reader opens on the first emit, and its start becomes an offset at once, as a checkpoint keeps it.
    await emitUntil(a, () => a.offsets.get(0) !== undefined);
    expect(a.offsets.get(0)).toBe(last);
    const pinned = checkpointSplits(a);
    await pub(subject('x'), { n: 3 });
    await pub(subject('x'), { end: true });
    expect(ns(await emitUntil(a, ended([0])))).toEqual([3]);
    await a.close();

    // A recovery to the checkpoint taken before message 3 reads it again, though 'latest' would now begin after it.
    const b = source({ stream, start: 'latest' });
    restoreSplits(b, pinned);
    expect(ns(await emitUntil(b, ended([0])))).toEqual([3]);
  });

  it('dead-letters a message that is not a JSON object, with its text and the reason, and reads on', async () => {
    const { stream, subject } = await makeStream();
    await pub(subject('m'), { n: 1 });
    const bad = await pub(subject('m'), 'not json at all');
    await pub(subject('m'), '[1,2]');
    await pub(subject('m'), { n: 2 });
    const s = source({ stream });
    expect(ns(await emitUntil(s, (g) => g.length === 2))).toEqual([1, 2]);
    expect(s.deadLetters).toEqual([
      { record: 'not json at all', reason: expect.stringMatching(/^not valid JSON/) },
      { record: '[1,2]', reason: 'not a JSON object: a record is an object of fields, this is an array' },
    ]);
    expect(s.offsets.get(0)).toBe(bad + 2);
  });

  it('reports the messages it has not emitted as its lag, per split', async () => {
    const { stream, subject } = await makeStream();
    for (let n = 0; n < 7; n++) await pub(subject(`l.${n < 5 ? 0 : 1}`), { n });
    const s = source({ stream, subjects: `${subject('l.0')},${subject('l.1')}` });
    const out = { emit: () => {} };
    s.emit(0, out); // opens the readers; nothing emitted
    const lagOf = () => s.lag().map((l) => [l.name, l.messages]);
    await until('the lag of every message', () =>
      equal(lagOf(), [
        [subject('l.0'), 5],
        [subject('l.1'), 2],
      ]),
    );
    expect(s.lag().every((l) => typeof l.ms === 'number' && l.ms >= 0)).toBe(true);
    s.emit(3, out); // round robin: two of l.0, one of l.1
    await until('the lag after three emitted', () =>
      equal(lagOf(), [
        [subject('l.0'), 3],
        [subject('l.1'), 1],
      ]),
    );
    await pub(subject('l.1'), { n: 7 });
    await until('a message published since counted', () =>
      equal(lagOf(), [
        [subject('l.0'), 3],
        [subject('l.1'), 2],
      ]),
    );
    await emitUntil(s, (g) => g.length === 5);
    await until('no lag once all is emitted', () =>
      equal(lagOf(), [
        [subject('l.0'), 0],
        [subject('l.1'), 0],
      ]),
    );
    expect(s.lag().map((l) => l.ms)).toEqual([0, 0]);
  });

  it("is made by the registry from a 'nats' vertex, reading through its named connection", async () => {
    const { stream, subject } = await makeStream();
    const redis = new Redis({ lazyConnect: true });
    const env: ConnectorEnv = {
      index: 1,
      parallelism: 2,
      sink: { jobId: 'j', attempt: 1, index: 1 },
      redis,
      keys: redisKeys('t'),
      databaseUrl: 'postgresql://nowhere/db',
      deadLetter: () => {},
      connection: async (name) => (name === 'test' ? profile : Promise.reject(new Error(`no connection ${name}`))),
      logger: silentLogger,
    };
    const vertex = {
      id: 'v',
      type: 'nats',
      name: 'nats',
      parallelism: 2,
      settings: { connection: 'test', stream, subjects: `${subject('0')},${subject('1')}` },
    };
    const s = createSource(vertex as unknown as Vertex, env);
    expect(s).toBeInstanceOf(NatsSource);
    sources.push(s as NatsSource);
    expect(s.splits).toEqual([1]);
    await pub(subject('0'), { n: 0 });
    await pub(subject('1'), { n: 1 });
    await s.open!();
    expect(await emitUntil(s, (g) => g.length === 1)).toEqual([{ split: 1, record: { n: 1 } }]);
    redis.disconnect();
  });

  it('fails to open on a stream that does not exist, naming it and the server', async () => {
    const s = source({ stream: `kft_missing_${randomBytes(4).toString('hex')}` });
    await expect(s.open()).rejects.toThrow(/^stream 'kft_missing_[0-9a-f]+' does not exist on nats:\/\/127\.0\.0\.1:4222$/);
  });

  it('fails to open when a subject filter is outside the subjects of its stream', async () => {
    const { stream, subject } = await makeStream();
    const s = source({ stream, subjects: `${subject('ok')},kft.elsewhere.x` });
    await expect(s.open()).rejects.toThrow(
      `stream '${stream}' on nats://127.0.0.1:4222 holds no subject of 'kft.elsewhere.x': its subjects are ${subject('>')}`,
    );
  });

  it('says so when its stream is deleted while it reads', async () => {
    const { stream, subject } = await makeStream();
    await pub(subject('d'), { n: 1 });
    const s = source({ stream });
    await emitUntil(s, (g) => g.length === 1);
    await jsm.streams.delete(stream);
    await emitUntil(s, () =>
      s.warnings.some((w) => (w.fields as { error?: string }).error === `stream '${stream}' does not exist on nats://127.0.0.1:4222`),
    );
  });
});
