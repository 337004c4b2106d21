import { startLogicalPostgres, type LogicalPostgres } from '@keyflow/runtime/testing';
import mqtt from 'mqtt';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killWorkerRunning, startStack, waitFor, waitForCheckpoint, waitForRecovered, type Stack } from './harness.ts';

// Sources that cannot replay from an offset of their own choosing: Postgres changes (a replication slot,
// acknowledged after each checkpoint) and MQTT (a persistent session, PUBACK after each checkpoint). Each runs
// while the test changes rows or publishes, through a worker killed mid-run; their records go to a Redis stream
// (exactly-once sink) that the test reads back in order.

const MQTT_URL = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';

describe('change streams through a kill -9', () => {
  let stack: Stack;
  let logical: LogicalPostgres;
  beforeAll(async () => {
    [stack, logical] = await Promise.all([startStack({ workers: 2, slots: 4, env: { HEARTBEAT_TIMEOUT_MS: '2000' } }), startLogicalPostgres()]);
  });
  afterAll(async () => {
    await stack?.close();
    await logical?.stop();
  });

  /** A pipeline `source → out` (a Redis stream, exactly-once), deployed; returns the job and how to read the stream. */
  async function deployToStream(name: string, source: { type: string; settings: Record<string, unknown> }) {
    const stream = `${stack.prefix}:${name}:out`;
    const p = await stack.client.createPipeline({
      name: `${name}-${stack.prefix}`,
      graph: {
        vertices: [
          { id: 'events', type: source.type, parallelism: 1, settings: source.settings },
          { id: 'out', type: 'redisStreamSink', parallelism: 1, settings: { stream } },
        ],
        edges: [{ from: 'events', to: 'out', partitioning: 'forward' }],
      },
    });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 500 });
    const read = async <T>() => (await stack.redis.xrange(stream, '-', '+')).map(([, fields]) => JSON.parse(fields[1]!) as T);
    return { job, read };
  }

  it('Postgres changes: inserts, updates and deletes arrive in order per row, each once, across a kill -9', async () => {
    const url = new URL(logical.url);
    const db = new pg.Client({ connectionString: logical.url });
    await db.connect();
    try {
      await db.query('CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL)');
      await db.query('CREATE PUBLICATION items_pub FOR TABLE items');
      await stack.client.createConnection({
        name: `cdc-${stack.prefix}`,
        kind: 'postgres',
        url: `postgresql://${url.host}/postgres`,
        username: decodeURIComponent(url.username),
        password: decodeURIComponent(url.password),
      });
      const { job, read } = await deployToStream('cdc', {
        type: 'postgresCdc',
        settings: { connection: `cdc-${stack.prefix}`, publication: 'items_pub', slot: 'items_slot' },
      });
      await waitForCheckpoint(stack, job.id);

      // Each row: an insert, five updates and, for every other row, a delete; one transaction per step of 50 rows.
      const ROWS = 400;
      const expected = new Map<number, string[]>();
      const step = async (ops: [number, string][]) => {
        await db.query('BEGIN');
        for (const [id, op] of ops) {
          if (op === 'insert') await db.query('INSERT INTO items VALUES ($1, 0)', [id]);
          else if (op === 'delete') await db.query('DELETE FROM items WHERE id = $1', [id]);
          else await db.query('UPDATE items SET v = $2 WHERE id = $1', [id, Number(op.slice(7))]);
          expected.set(id, [...(expected.get(id) ?? []), op]);
        }
        await db.query('COMMIT');
      };
      const plan: [number, string][][] = [];
      for (let base = 0; base < ROWS; base += 50) {
        const ids = Array.from({ length: 50 }, (_, i) => base + i);
        plan.push(ids.map((id) => [id, 'insert']));
        for (let u = 1; u <= 5; u++) plan.push(ids.map((id) => [id, `update ${u}`]));
        plan.push(ids.filter((id) => id % 2 === 0).map((id) => [id, 'delete']));
      }
      // Half the changes, the kill, the other half while the job recovers.
      const half = Math.floor(plan.length / 2);
      for (const ops of plan.slice(0, half)) await step(ops);
      await waitFor(async () => (await read()).length > 0, 30_000, 'changes in the output stream');
      await killWorkerRunning(stack, job.id, 'events');
      await stack.addWorker();
      for (const ops of plan.slice(half)) await step(ops);
      await waitForRecovered(stack, job.id, 60_000);

      const total = [...expected.values()].reduce((n, ops) => n + ops.length, 0);
      type Change = { op: string; new: { id: number; v: number } | null; old: { id: number } | null };
      await waitFor(async () => (await read()).length >= total, 60_000, `all ${total} changes in the output stream`, 250);
      const changes = await read<Change>();
      expect(changes).toHaveLength(total);
      const got = new Map<number, string[]>();
      for (const c of changes) {
        const id = (c.new ?? c.old)!.id;
        const op = c.op === 'update' ? `update ${c.new!.v}` : c.op;
        got.set(id, [...(got.get(id) ?? []), op]);
      }
      expect([...got].filter(([id, ops]) => ops.join() !== expected.get(id)!.join()).slice(0, 5)).toEqual([]);
      expect(got.size).toBe(ROWS);
      await stack.client.cancelJob(job.id);
    } finally {
      await db.end();
    }
  });

  it('MQTT: every message arrives at least once across a kill -9, and the duplicates are counted', async () => {
    await stack.client.createConnection({ name: `mqtt-${stack.prefix}`, kind: 'mqtt', url: MQTT_URL });
    const topic = `kft/${stack.prefix}/readings`;
    const { job, read } = await deployToStream('mqtt', {
      type: 'mqtt',
      settings: { connection: `mqtt-${stack.prefix}`, topics: topic },
    });
    await waitForCheckpoint(stack, job.id);
    // The source's session exists once it subscribed: publishing before that would go nowhere (no session yet).
    await waitFor(
      async () => (await stack.client.getJob(job.id)).metrics?.vertices.events?.sourceLag !== undefined,
      30_000,
      'the MQTT source subscribed',
    );
    const client = await mqtt.connectAsync(MQTT_URL, { clientId: `kft-pub-${stack.prefix}` });
    // Mosquitto keeps up to 1,000 messages for a session nobody reads (max_queued_messages): the test stays below.
    const BEFORE = 1000;
    const TOTAL = 1600;
    try {
      const publish = async (from: number, to: number) => {
        for (let seq = from; seq < to; seq++) await client.publishAsync(topic, JSON.stringify({ seq }), { qos: 1 });
      };
      await publish(0, BEFORE);
      // While the session is away, Mosquitto counts the messages it delivered and had no PUBACK for in that limit too
      // (the README's "MQTT's limits"): the kill waits until checkpoints covered most of the first ones, so that these
      // and the ones published during the recovery stay below it, however slowly the machine runs the job.
      await waitFor(async () => (await read()).length >= BEFORE - 300, 60_000, `${BEFORE - 300} messages in the output stream`);
      await killWorkerRunning(stack, job.id, 'events');
      await stack.addWorker();
      // Published while the source is down or recovering: its persistent session keeps them.
      await publish(BEFORE, TOTAL);
      await waitForRecovered(stack, job.id, 60_000);
      const seqs = async () => new Set((await read<{ seq: number }>()).map((m) => m.seq));
      let seen = 0;
      await waitFor(async () => (seen = (await seqs()).size) === TOTAL, 90_000, `all ${TOTAL} messages in the output stream`, 250).catch((err) => {
        throw new Error(`${(err as Error).message} (${seen} distinct arrived)`);
      });
      const all = await read<{ seq: number }>();
      const duplicates = all.length - TOTAL;
      console.log(`MQTT across a kill -9: ${TOTAL} messages, ${duplicates} delivered twice (at least once)`);
      expect(duplicates).toBeGreaterThanOrEqual(0);
      // Nothing outside what was published.
      expect(all.every((m) => m.seq >= 0 && m.seq < TOTAL)).toBe(true);
    } finally {
      await client.endAsync();
    }
    await stack.client.cancelJob(job.id);
  });
});
