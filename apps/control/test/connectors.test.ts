import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectExactThroughFailures } from './connectorExactness.ts';
import { killWorkerRunning, startStack, waitFor, waitForCheckpoint, waitForFinished, type Stack } from './harness.ts';

// Real brokers feeding a keyed count into an exactly-once Postgres sink, through a worker killed mid-run and live
// rescales of the source and the count. KEYFLOW_CONNECTOR_RECORDS raises the published set (default 500,000).
const TOTAL = Number(process.env.KEYFLOW_CONNECTOR_RECORDS ?? 500_000);
const KEYS = 10_000;
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

/** A JetStream stream of the test's own (file storage, the default duplicate window), deleted after it. */
async function withStream<T>(name: string, subjects: string[], fn: () => Promise<T>): Promise<T> {
  const nc = await connect({ servers: NATS_URL });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects });
  try {
    return await fn();
  } finally {
    await jsm.streams.delete(name).catch(() => {});
    await nc.close();
  }
}

// Each test publishes for 25 s, then kills, recovers and rescales twice, and waits up to 180 s for the last records to
// reach the sink: about 60 s alone, but past the default 120 s under a full CI run on two cores, where the bare timeout
// said nothing. A stuck step still fails on its own named deadline before this one.
describe('broker sources, exactly-once through a kill -9 and live rescales', { timeout: 300_000 }, () => {
  let stack: Stack;
  beforeAll(async () => {
    // Three workers of four slots: one is killed, and the rescales need room on the other two.
    stack = await startStack({ workers: 3, slots: 4, env: { HEARTBEAT_TIMEOUT_MS: '2000' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it(`Redis Streams: ${TOTAL.toLocaleString('en-US')} entries over ${KEYS.toLocaleString('en-US')} keys in four stream keys, each counted once`, async () => {
    const streams = [0, 1, 2, 3].map((i) => `${stack.prefix}:test-stream:${i}`);
    await expectExactThroughFailures(
      stack,
      'rs_counts',
      {
        source: { type: 'redisStream', settings: { streams: streams.join(',') } },
        target: { kind: 'redis', url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', streams },
      },
      { total: TOTAL, keys: KEYS },
    );
  });

  it(`HTTP ingest: ${TOTAL.toLocaleString('en-US')} records over ${KEYS.toLocaleString('en-US')} keys POSTed as NDJSON into four partitions, each counted once`, async () => {
    const name = `orders-${stack.prefix}`
      .toLowerCase()
      .replace(/[^a-z0-9_-]/g, '-')
      .slice(0, 60);
    await expectExactThroughFailures(
      stack,
      'http_counts',
      {
        source: { type: 'http', settings: { name, partitions: 4 } },
        target: { kind: 'http', url: `${stack.url}/api/ingest/${name}`, token: stack.token },
      },
      { total: TOTAL, keys: KEYS },
    );
  });

  it(`NATS JetStream: ${TOTAL.toLocaleString('en-US')} messages over ${KEYS.toLocaleString('en-US')} keys on four subjects, each counted once`, async () => {
    const name = `KFT_${stack.prefix.replace(/\W/g, '_')}`;
    const subjects = [0, 1, 2, 3].map((i) => `kft.${stack.prefix}.orders.${i}`);
    await stack.client.createConnection({ name: `nats-${stack.prefix}`, kind: 'nats', url: NATS_URL });
    await withStream(name, [`kft.${stack.prefix}.orders.*`], () =>
      expectExactThroughFailures(
        stack,
        'nats_counts',
        {
          source: { type: 'nats', settings: { connection: `nats-${stack.prefix}`, stream: name, subjects: subjects.join(',') } },
          target: { kind: 'nats', url: NATS_URL, subjects },
        },
        { total: TOTAL, keys: KEYS },
      ),
    );
  });

  it('JetStream sink: a worker killed mid-run replays, and the target stream still holds every count update once', async () => {
    const name = `KFT_OUT_${stack.prefix.replace(/\W/g, '_')}`;
    const subject = `kft.${stack.prefix}.counts`;
    const connection = `nats-out-${stack.prefix}`;
    const total = 200_000;
    await stack.client.createConnection({ name: connection, kind: 'nats', url: NATS_URL });
    await withStream(name, [subject], async () => {
      const p = await stack.client.createPipeline({
        name: `nats-sink-${stack.prefix}`,
        graph: {
          vertices: [
            { id: 'events', type: 'generator', parallelism: 1, settings: { seed: 5, rate: 40_000, keys: 1000, total, splits: 4 } },
            { id: 'count', type: 'count', parallelism: 2 },
            { id: 'out', type: 'natsSink', parallelism: 2, settings: { connection, subject } },
          ],
          edges: [
            { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
            { from: 'count', to: 'out', partitioning: 'forward' },
          ],
        },
      });
      const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 500 });
      await waitForCheckpoint(stack, job.id);
      // Mid-run: what the killed attempt published after its last completed checkpoint is replayed by the next.
      await waitFor(
        async () => ((await stack.client.getJob(job.id)).metrics?.vertices.count?.recordsIn ?? 0) > total / 4,
        60_000,
        'a quarter counted',
      );
      await killWorkerRunning(stack, job.id, 'count');
      await stack.addWorker();
      const done = await waitForFinished(stack, job.id, 180_000);
      expect(done.attempt).toBeGreaterThanOrEqual(2);

      // Every record the count emitted is one (key, count) update: each must be in the stream exactly once.
      const nc = await connect({ servers: NATS_URL });
      try {
        const info = await (await jetstreamManager(nc)).streams.info(name);
        expect(info.state.messages).toBe(total);
        const updates = new Set<string>();
        const consumer = await jetstream(nc).consumers.get(name);
        const messages = await consumer.consume();
        for await (const m of messages) {
          const { key, count } = m.json<{ key: string; count: number }>();
          updates.add(`${key}:${count}`);
          if (m.seq === info.state.last_seq) break;
        }
        expect(updates.size).toBe(total);
      } finally {
        await nc.close();
      }
    });
  });
});
