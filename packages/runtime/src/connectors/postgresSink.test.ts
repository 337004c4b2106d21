import { randomUUID } from 'node:crypto';
import { postgresSinkSettings, type Rec } from '@keyflow/core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTransient, PostgresSink } from './postgresSink.ts';
import { SinkFencedError, type SinkContext } from './sink.ts';

// The sinks' restricted role (the test run's global setup makes it): tables land in its schema.
const url = process.env.KEYFLOW_SINK_DATABASE_URL!;
let db: pg.Client;
const open: PostgresSink[] = [];

beforeAll(async () => {
  db = new pg.Client({ connectionString: url });
  await db.connect();
});
afterAll(async () => {
  await Promise.all(open.map((s) => s.close()));
  await db.end();
});

let tables = 0;
function setup(delivery: 'exactly-once' | 'at-least-once' = 'exactly-once') {
  const table = `sink_test_${process.pid}_${tables++}`;
  const jobId = randomUUID();
  const deadLetters: { record: unknown; reason: string }[] = [];
  const sink = (ctx: Partial<SinkContext> = {}) => {
    const s = new PostgresSink(
      postgresSinkSettings.parse({ table, valueField: 'n', delivery }),
      url,
      { jobId, vertexId: 'sink', attempt: 1, index: 0, recoverFrom: 0, ...ctx },
      (record, reason) => deadLetters.push({ record, reason }),
    );
    open.push(s);
    return s;
  };
  const rows = async () =>
    Object.fromEntries(
      (await db.query<{ key: string; value: number }>(`SELECT key, value FROM "${table}" ORDER BY key`)).rows.map((r) => [r.key, r.value]),
    );
  const pending = async () =>
    (
      await db.query<{ attempt: number; checkpoint: number }>(
        'SELECT attempt, checkpoint FROM keyflow_sink_pending WHERE job_id = $1 ORDER BY 1, 2',
        [jobId],
      )
    ).rows;
  return { table, sink, rows, pending, deadLetters };
}

const rec = (key: string, n: number) => ({ key, n }) as Rec;

describe('exactly-once postgres sink', () => {
  it("keeps its table and its bookkeeping in the sinks' own schema, away from Keyflow's tables in public", async () => {
    const { sink, table } = setup();
    const a = sink();
    await a.open();
    a.process(rec('k', 1));
    await a.preCommit(1);
    await a.commit(1);
    const { rows } = await db.query<{ schemaname: string; tablename: string }>(
      'SELECT schemaname, tablename FROM pg_tables WHERE tablename = ANY($1) ORDER BY tablename',
      [[table, 'keyflow_sink_fence', 'keyflow_sink_pending']],
    );
    expect(rows).toEqual([
      { schemaname: 'keyflow_sinks', tablename: 'keyflow_sink_fence' },
      { schemaname: 'keyflow_sinks', tablename: 'keyflow_sink_pending' },
      { schemaname: 'keyflow_sinks', tablename: table },
    ]);
  });

  it('writes more keys than one encoding slice holds, every one exactly once', async () => {
    const { sink, table } = setup();
    const a = sink();
    await a.open();
    for (let i = 0; i < 25_000; i++) a.process(rec(`k${i}`, i));
    await a.preCommit(1);
    await a.commit(1);
    const { rows } = await db.query<{ n: number; sum: number }>(`SELECT count(*)::int AS n, sum((value)::int)::float AS sum FROM "${table}"`);
    expect(rows[0]).toEqual({ n: 25_000, sum: (25_000 * 24_999) / 2 });
  });

  it('shows nothing until the checkpoint completes, then the newest value per key', async () => {
    const { sink, rows, pending } = setup();
    const a = sink();
    await a.open();
    a.process(rec('x', 1));
    a.process(rec('y', 1));
    await a.preCommit(1);
    a.process(rec('x', 2));
    await a.preCommit(2);
    a.process(rec('x', 3)); // after barrier 2: belongs to checkpoint 3
    expect(await rows()).toEqual({});
    expect(await pending()).toEqual([
      { attempt: 1, checkpoint: 1 },
      { attempt: 1, checkpoint: 2 },
    ]);

    await a.commit(2);
    expect(await rows()).toEqual({ x: 2, y: 1 });
    expect(await pending()).toEqual([]);
    await a.commit(2); // a repeated completion changes nothing
    expect(await rows()).toEqual({ x: 2, y: 1 });
  });

  it('commits every subtask’s output up to the checkpoint, in checkpoint order, whoever commits first', async () => {
    const { sink, rows } = setup();
    const a = sink({ index: 0 });
    const b = sink({ index: 1 });
    await a.open();
    await b.open();
    // Key k moved from a to b by a rescale at checkpoint 1: a's value is older than b's.
    a.process(rec('k', 10));
    await a.preCommit(1);
    b.process(rec('k', 11));
    b.process(rec('m', 1));
    await b.preCommit(2);
    await b.commit(2);
    expect(await rows()).toEqual({ k: 11, m: 1 });
    await a.commit(1); // a's late commit of the older checkpoint finds nothing left to write
    expect(await rows()).toEqual({ k: 11, m: 1 });
  });

  it('a new attempt commits what belongs to the checkpoint it restarts from and discards the rest', async () => {
    const { sink, rows, pending } = setup();
    const old = sink({ attempt: 1 });
    await old.open();
    old.process(rec('a', 1));
    await old.preCommit(4); // completed, but the attempt failed before committing it
    old.process(rec('a', 2));
    old.process(rec('b', 1));
    await old.preCommit(5); // never completed: its records are replayed by the new attempt
    expect(await rows()).toEqual({});

    const next = sink({ attempt: 2, recoverFrom: 4 });
    await next.open();
    expect(await rows()).toEqual({ a: 1 });
    expect(await pending()).toEqual([]);
  });

  it('fences a zombie of an older attempt: it can neither pre-commit nor commit', async () => {
    const { sink, rows, pending } = setup();
    const zombie = sink({ attempt: 1 });
    await zombie.open();
    zombie.process(rec('z', 1));
    await zombie.preCommit(1);

    const next = sink({ attempt: 2, recoverFrom: 0 });
    await next.open();
    expect(await pending()).toEqual([]); // checkpoint 1 never completed: discarded

    // The zombie goes on as if nothing happened.
    await expect(zombie.commit(1)).rejects.toBeInstanceOf(SinkFencedError);
    zombie.process(rec('z', 99));
    await expect(zombie.preCommit(2)).rejects.toThrow(/fenced off: attempt 1 is stale, the sink belongs to attempt 2/);
    await expect(zombie.finish(2)).rejects.toBeInstanceOf(SinkFencedError);
    expect(await rows()).toEqual({});
    expect(await pending()).toEqual([]);

    // A zombie that starts late cannot take the sink back either.
    await expect(sink({ attempt: 1 }).open()).rejects.toBeInstanceOf(SinkFencedError);

    next.process(rec('z', 5));
    await next.preCommit(2);
    await next.commit(2);
    expect(await rows()).toEqual({ z: 5 });
  });

  it('keeps what a failed pre-commit held for the next checkpoint', async () => {
    const { table, sink, rows } = setup();
    const a = sink();
    await a.open();
    a.process(rec('p', 1));
    a.process(rec('q', 1));
    // A table that rejects the pre-commit's row for a while (a stand-in for Postgres being unreachable).
    await db.query(
      `ALTER TABLE keyflow_sink_pending ADD CONSTRAINT block_${table} CHECK (job_id <> '${(a as unknown as { ctx: SinkContext }).ctx.jobId}')`,
    );
    try {
      await expect(a.preCommit(1)).rejects.toThrow(/violates check constraint/);
    } finally {
      await db.query(`ALTER TABLE keyflow_sink_pending DROP CONSTRAINT block_${table}`);
    }
    a.process(rec('q', 2));
    await a.preCommit(2);
    await a.commit(2);
    expect(await rows()).toEqual({ p: 1, q: 2 });
  });

  it('at the end of the input commits its remainder with what completed', async () => {
    const { sink, rows } = setup();
    const a = sink({ index: 0 });
    const b = sink({ index: 1 });
    await a.open();
    await b.open();
    b.process(rec('b', 1));
    await b.preCommit(1); // checkpoint 1 is not known complete when a finishes
    a.process(rec('a', 1));
    await a.preCommit(1);
    a.process(rec('a', 2));
    await a.finish(0);
    expect(await rows()).toEqual({ a: 2 });
    await b.finish(1);
    expect(await rows()).toEqual({ a: 2, b: 1 });
  });

  it('dead-letters a record without a usable key', async () => {
    const { sink, deadLetters } = setup();
    const a = sink();
    a.process({ n: 1 } as Rec);
    a.process({ key: { nested: true }, n: 1 } as unknown as Rec);
    expect(deadLetters.map((d) => d.reason)).toEqual([
      "postgres sink: record lacks a usable key field 'key'",
      "postgres sink: record lacks a usable key field 'key'",
    ]);
  });
});

describe('at-least-once postgres sink', () => {
  it('writes on flush, without waiting for a checkpoint', async () => {
    const { sink, rows } = setup('at-least-once');
    const a = sink();
    await a.open();
    a.process(rec('x', 1));
    await a.flush();
    expect(await rows()).toEqual({ x: 1 });
    a.process(rec('x', 2));
    await a.preCommit(1);
    expect(await rows()).toEqual({ x: 2 });
  });
});

describe('isTransient', () => {
  it('retries connection loss and conflicts, not errors about the data', () => {
    expect(isTransient(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isTransient(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isTransient(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }))).toBe(true);
    expect(isTransient(Object.assign(new Error('deadlock detected'), { code: '40P01' }))).toBe(true);
    expect(isTransient(Object.assign(new Error('column "key" is of type integer'), { code: '42804' }))).toBe(false);
    expect(isTransient(new SinkFencedError(1, 2))).toBe(false);
  });
});
