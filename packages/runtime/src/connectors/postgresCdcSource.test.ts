import { postgresCdcSettings } from '@keyflow/core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, type Logger } from '../logger.ts';
import {
  changesToSkip,
  formatLsn,
  formatPosition,
  parseLsn,
  parsePosition,
  PostgresCdcSource,
  resumeLsn,
  type Position,
} from './postgresCdcSource.ts';
import { startLogicalPostgres, type LogicalPostgres } from './testing/logicalPostgres.ts';
import { checkpointSplits, emitExactly, emitUntil, restoreSplits, type Emitted } from './testing/sourceDriver.ts';

// The machine's Postgres runs with wal_level=replica: it stands for a server that cannot do logical replication.
const replicaUrl = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
let server: LogicalPostgres;
let db: pg.Client;
const closing: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  server = await startLogicalPostgres();
  db = new pg.Client({ connectionString: server.url });
  await db.connect();
});
afterAll(async () => {
  await Promise.all(closing.map((c) => c.close()));
  await db?.end();
  await server?.stop();
});

let tables = 0;
/** A fresh table in its own publication, read through its own slot. */
async function setup(columns = 'id int PRIMARY KEY, v text') {
  const n = tables++;
  const table = `cdc_${n}`;
  await db.query(`CREATE TABLE ${table} (${columns})`);
  await db.query(`CREATE PUBLICATION pub_${n} FOR TABLE ${table}`);
  return { table, publication: `pub_${n}`, slot: `slot_${n}` };
}

function source(
  s: { publication: string; slot: string },
  { url = server.url, log = silentLogger, username, password }: { url?: string; log?: Logger; username?: string; password?: string } = {},
) {
  const src = PostgresCdcSource.fromSettings(
    postgresCdcSettings.parse({ connection: 'cdc', publication: s.publication, slot: s.slot }),
    async () => ({ name: 'cdc', kind: 'postgres', url, ...(username && { username }), ...(password && { password }) }),
    0,
    1,
    () => {},
    log,
  );
  closing.push(src);
  return src;
}

/** Inserts ids [from, to) of `table`, each in a transaction of its own. */
async function insertEach(table: string, from: number, to: number): Promise<void> {
  for (let id = from; id < to; id++) await db.query(`INSERT INTO ${table} (id, v) VALUES ($1, $2)`, [id, `v${id}`]);
}

/** The slot's confirmed flush position, as Postgres keeps it. */
async function confirmedFlush(slot: string): Promise<bigint> {
  const { rows } = await db.query<{ lsn: string }>('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  return parseLsn(rows[0]!.lsn);
}

/** Where the server's WAL stands now. */
async function walLsnNow(): Promise<bigint> {
  const { rows } = await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  return parseLsn(rows[0]!.lsn);
}

async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ids = (got: Emitted[]) => got.map((g) => ((g.record.new ?? g.record.old) as { id: number }).id);
const change = (g: Emitted) => {
  const { op, table, new: n, old } = g.record;
  return { op, table, new: n, old };
};

describe('Postgres changes source', () => {
  it('streams inserts, updates and deletes in commit order: op, new, and the old row or key per REPLICA IDENTITY', async () => {
    const t = await setup('id int PRIMARY KEY, v text, n bigint, at timestamptz, d date, b bytea, j jsonb');
    await db.query(`CREATE TABLE ${t.table}_full (id int PRIMARY KEY, v text)`);
    await db.query(`ALTER TABLE ${t.table}_full REPLICA IDENTITY FULL`);
    await db.query(`ALTER PUBLICATION ${t.publication} ADD TABLE ${t.table}_full`);
    const s = source(t);
    // Opening makes the slot: a new job reads what changes from then on.
    await s.open();
    const before = await walLsnNow();
    await db.query(`INSERT INTO ${t.table} VALUES (1, 'a', 9007199254740993, '2024-05-01T10:00:00.123Z', '2024-05-01', '\\x01ff', '{"k":[1,2]}')`);
    await db.query(`INSERT INTO ${t.table} (id, v) VALUES (2, 'b')`);
    await db.query('BEGIN');
    await db.query(`UPDATE ${t.table} SET v = 'a2' WHERE id = 1`);
    await db.query(`UPDATE ${t.table} SET id = 3 WHERE id = 2`);
    await db.query('COMMIT');
    await db.query(`DELETE FROM ${t.table} WHERE id = 3`);
    await db.query(`INSERT INTO ${t.table}_full VALUES (7, 'x')`);
    await db.query(`UPDATE ${t.table}_full SET v = 'y' WHERE id = 7`);
    await db.query(`DELETE FROM ${t.table}_full WHERE id = 7`);

    const got = await emitUntil(s, (g) => g.length >= 8);
    const full = `${t.table}_full`;
    expect(got.map(change)).toEqual([
      {
        op: 'insert',
        table: t.table,
        new: { id: 1, v: 'a', n: '9007199254740993', at: '2024-05-01T10:00:00.123Z', d: '2024-05-01', b: '\\x01ff', j: { k: [1, 2] } },
        old: null,
      },
      { op: 'insert', table: t.table, new: { id: 2, v: 'b', n: null, at: null, d: null, b: null, j: null }, old: null },
      // The default identity sends the old key only when it changed.
      { op: 'update', table: t.table, new: expect.objectContaining({ id: 1, v: 'a2' }), old: null },
      { op: 'update', table: t.table, new: expect.objectContaining({ id: 3, v: 'b' }), old: { id: 2 } },
      { op: 'delete', table: t.table, new: null, old: { id: 3 } },
      { op: 'insert', table: full, new: { id: 7, v: 'x' }, old: null },
      { op: 'update', table: full, new: { id: 7, v: 'y' }, old: { id: 7, v: 'x' } },
      { op: 'delete', table: full, new: null, old: { id: 7, v: 'y' } },
    ]);
    for (const g of got) {
      expect(g.record.schema).toBe('public');
      expect(g.record.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      expect(parseLsn(g.record.lsn as string)).toBeGreaterThanOrEqual(before);
      expect(Math.abs((g.record.ts as number) - Date.now())).toBeLessThan(60_000);
    }
    // Both updates of one transaction share its commit time; the offset is the last transaction's commit, whole.
    expect(got[2]!.record.ts).toBe(got[3]!.record.ts);
    const offset = parsePosition(s.offsets.get(0));
    expect(offset.changes).toBe('all');
    expect(offset.commit).toBeGreaterThan(parseLsn(got[7]!.record.lsn as string));
  });

  it('resumes after a crash right after its checkpoint, each change once, though the slot was never acknowledged', async () => {
    const t = await setup();
    const first = source(t);
    await first.open();
    const slotStart = await confirmedFlush(t.slot);
    await insertEach(t.table, 0, 10);
    const before = await emitExactly(first, 6);
    // Checkpoint 1 is taken; the process dies before its completion reaches Postgres.
    const checkpoint = checkpointSplits(first);
    first.snapshot(1);
    const lost = await emitExactly(first, 3);
    first.snapshot(2);
    await first.close();
    expect(await confirmedFlush(t.slot)).toBe(slotStart);
    await insertEach(t.table, 10, 15);

    const second = source(t);
    restoreSplits(second, checkpoint);
    // A sentinel after everything: once it came, whatever else was coming came too.
    await insertEach(t.table, 99, 100);
    const after = await emitUntil(second, (g) => ids(g).includes(99));
    expect(ids(before)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(ids(lost)).toEqual([6, 7, 8]);
    expect(ids(after)).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14, 99]);
  });

  it('acknowledges a checkpoint to the slot only when it completed, and a recovery from it goes on right after', async () => {
    const t = await setup();
    const first = source(t);
    await first.open();
    const slotStart = await confirmedFlush(t.slot);
    await insertEach(t.table, 0, 6);
    await emitExactly(first, 3);
    first.snapshot(1);
    const at1 = resumeLsn(parsePosition(first.offsets.get(0)));
    await emitExactly(first, 3);
    first.snapshot(2);
    const at2 = resumeLsn(parsePosition(first.offsets.get(0)));
    const checkpoint2 = checkpointSplits(first);
    expect(at2).toBeGreaterThan(at1);
    await insertEach(t.table, 6, 8);
    await emitExactly(first, 2);
    // Everything was read: none of it is acknowledged before a checkpoint completes.
    expect(await confirmedFlush(t.slot)).toBe(slotStart);

    await first.completed(1);
    await waitFor(async () => (await confirmedFlush(t.slot)) !== slotStart);
    // Exactly checkpoint 1's position, not what was read after it.
    expect(await confirmedFlush(t.slot)).toBe(at1);
    await first.completed(2);
    await waitFor(async () => (await confirmedFlush(t.slot)) === at2);

    // The process dies; a recovery from checkpoint 2 finds what came after it in the slot.
    await first.close();
    const second = source(t);
    restoreSplits(second, checkpoint2);
    await insertEach(t.table, 99, 100);
    const after = await emitUntil(second, (g) => ids(g).includes(99));
    expect(ids(after)).toEqual([6, 7, 99]);
  });

  it('resumes a large transaction cut by a checkpoint exactly where the checkpoint cut it', async () => {
    const t = await setup();
    const first = source(t);
    await first.open();
    await insertEach(t.table, 0, 1);
    // More than the split's buffer and the read-ahead queue hold: reading it pauses the replication socket on the way.
    await db.query(`INSERT INTO ${t.table} (id, v) SELECT i, 'big' FROM generate_series(1, 6000) AS i`);
    await insertEach(t.table, 10000, 10001);
    const before = await emitExactly(first, 1 + 1234);
    const cut = parsePosition(first.offsets.get(0));
    expect(cut.changes).toBe(1234);
    const checkpoint = checkpointSplits(first);
    first.snapshot(1);
    await first.completed(1);
    // The cut transaction stays in the slot: acknowledged up to its commit, not past it.
    await waitFor(async () => (await confirmedFlush(t.slot)) === cut.commit);
    await emitExactly(first, 500);
    await first.close();

    const second = source(t);
    restoreSplits(second, checkpoint);
    const after = await emitUntil(second, (g) => ids(g).includes(10000), 30_000);
    const all = [...ids(before), ...ids(after)];
    expect(all).toEqual([0, ...Array.from({ length: 6000 }, (_, i) => i + 1), 10000]);
    // Once the transaction's commit came, the offset says it is whole.
    expect(parsePosition(second.offsets.get(0)).changes).toBe('all');
  });

  it('reads on after its replication connection breaks, from the last change emitted, none twice', async () => {
    const t = await setup();
    const reopened: string[] = [];
    const s = source(t, { log: { ...silentLogger, warn: (_fields, msg) => void reopened.push(msg) } });
    await s.open();
    await insertEach(t.table, 0, 10);
    const before = await emitExactly(s, 4);
    const { rows } = await db.query<{ pid: number }>('SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1', [t.slot]);
    expect(rows[0]!.pid).toBeGreaterThan(0);
    await db.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
    await insertEach(t.table, 10, 12);
    const after = await emitUntil(s, (g) => ids(g).includes(11));
    expect(reopened).toContain('reading a split failed; reopening it');
    expect([...ids(before), ...ids(after)]).toEqual(Array.from({ length: 12 }, (_, i) => i));
  });

  it('pins a new job at where the slot stands, so a recovery before the first change resumes there', async () => {
    const t = await setup();
    const first = source(t);
    await first.open();
    const slotStart = await confirmedFlush(t.slot);
    first.emit(10, { emit: () => {} });
    await waitFor(() => first.offsets.get(0) !== undefined);
    expect(resumeLsn(parsePosition(first.offsets.get(0)))).toBe(slotStart);
    const pinned = checkpointSplits(first);
    await first.close();
    await insertEach(t.table, 1, 3);
    const second = source(t);
    restoreSplits(second, pinned);
    expect(ids(await emitUntil(second, (g) => g.length >= 2))).toEqual([1, 2]);
  });

  it('reports the bytes of WAL the slot keeps as its lag', async () => {
    const t = await setup();
    const s = source(t);
    await s.open();
    await insertEach(t.table, 0, 3);
    await emitExactly(s, 3);
    let lag: ReturnType<NonNullable<typeof s.lag>> = [];
    await waitFor(() => {
      lag = s.lag();
      return lag.length > 0;
    });
    expect(lag).toEqual([{ split: 0, name: t.slot, bytes: expect.any(Number) }]);
    expect(lag[0]!.bytes).toBeGreaterThan(0);
  });

  it('says wal_level must be logical when it is not', async () => {
    const warnings: string[] = [];
    const log: Logger = { ...silentLogger, warn: (fields) => void warnings.push(String((fields as { error?: string }).error)) };
    const s = source({ publication: 'pub_none', slot: 'slot_none' }, { url: replicaUrl, log });
    await expect(s.open()).rejects.toThrow('wal_level is replica: logical replication needs wal_level=logical');
    // Reading says why it cannot, too (and keeps trying).
    s.emit(10, { emit: () => {} });
    await waitFor(() => warnings.length > 0);
    expect(warnings[0]).toBe('wal_level is replica: logical replication needs wal_level=logical');
  });

  it('says the user needs the REPLICATION attribute when it lacks it', async () => {
    const t = await setup();
    await db.query(`CREATE ROLE cdc_reader LOGIN PASSWORD 'reader'`);
    const s = source(t, { url: server.url.replace('postgres:keyflow@', ''), username: 'cdc_reader', password: 'reader' });
    await expect(s.open()).rejects.toThrow('the user cdc_reader lacks the REPLICATION attribute: ALTER ROLE cdc_reader REPLICATION');
  });
});

describe('positions of the changes source', () => {
  const p = (commit: string, changes: number | 'all'): Position => ({ commit: parseLsn(commit), changes });

  it.each([
    ['0/0', 0n],
    ['0/16B3748', 0x16b3748n],
    ['00000000/016B3748', 0x16b3748n],
    ['1/0', 1n << 32n],
    ['FFFFFFFF/FFFFFFFF', (1n << 64n) - 1n],
  ])('reads the LSN %s as %s', (text, lsn) => {
    expect(parseLsn(text)).toBe(lsn);
  });

  it('writes LSNs as Postgres does and reads its own offsets back', () => {
    expect(formatLsn((1n << 32n) | 0x16b3748n)).toBe('1/16B3748');
    expect(formatPosition(p('0/16B3748', 'all'))).toBe('0/16B3748');
    expect(formatPosition(p('0/16B3748', 3))).toBe('0/16B3748#3');
    expect(parsePosition('0/16B3748#3')).toEqual(p('0/16B3748', 3));
    expect(parsePosition('0/16B3748')).toEqual(p('0/16B3748', 'all'));
    expect(() => parsePosition(42)).toThrow('not an offset of a changes source: 42');
    expect(() => parsePosition('1-0')).toThrow('not an LSN: 1-0');
  });

  it.each([
    // [offset, the commit of a transaction the slot sends, how many of its changes are dropped]
    ['0/100', '0/FF', Infinity],
    ['0/100', '0/100', Infinity],
    ['0/100', '0/101', 0],
    ['0/100#3', '0/FF', Infinity],
    ['0/100#3', '0/100', 3],
    ['0/100#0', '0/100', 0],
    ['0/100#3', '1/0', 0],
  ])('resuming at %s, of the transaction committed at %s it drops %s changes', (offset, commit, dropped) => {
    expect(changesToSkip(parsePosition(offset), parseLsn(commit))).toBe(dropped);
  });

  it('starts and acknowledges the slot just after a whole transaction, at the commit of a cut one', () => {
    expect(resumeLsn(p('0/100', 'all'))).toBe(0x101n);
    expect(resumeLsn(p('0/100', 3))).toBe(0x100n);
  });
});
