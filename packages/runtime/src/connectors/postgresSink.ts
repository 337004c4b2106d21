import { getField, type Delivery, type Key, type PostgresSinkSettings, type Rec } from '@keyflow/core';
import type pg from 'pg';
import type { Sink, SinkContext } from './sink.ts';
import { SinkStore } from './sinkStore.ts';

export { isTransient } from './sinkStore.ts';

/** Pre-committed output of exactly-once Postgres sinks (their fence: SinkStore's). */
const PENDING = 'keyflow_sink_pending';

/**
 * Upserts the latest value per key into a user table (key text primary key, value jsonb). Updates to one key
 * between two writes collapse into one row write. Plain SQL through `pg`: the table is the user's, not part of
 * Keyflow's Prisma schema, and one `jsonb_each` upsert is one round trip per write. Every table name is
 * unqualified: with the sinks' restricted role (KEYFLOW_SINK_DATABASE_URL) they all live in its own schema.
 *
 * Exactly-once (the default; DESIGN §8) is a two-phase commit over the user's database. At barrier n a subtask
 * pre-commits: it inserts what it holds, as one jsonb row tagged (job, sink, attempt, n), into
 * `keyflow_sink_pending`. When n completes, whichever of the sink's subtasks gets there first commits, in one
 * transaction, every pending row of the attempt up to n, newest value per key first, and deletes them. Commits
 * of one sink are serialized by an advisory lock, so an older checkpoint's values never land after a newer one's.
 * `keyflow_sink_fence` holds the attempt that owns the sink: a new attempt raises it (under the lock) and, in the
 * same transaction, commits what older attempts pre-committed for checkpoints up to the one it restarts from and
 * discards the rest. Pre-commits and commits check the fence in their transaction, holding the row: a zombie
 * subtask of an older attempt can neither add output nor commit any.
 */
/** Whether a key field's value can be (part of) a row's key. (Module level: a closure made per record cost 5 % of a keyed count's CPU.) */
const usable = (v: unknown) => v !== undefined && v !== null && typeof v !== 'object';

export class PostgresSink implements Sink {
  readonly delivery: Delivery;
  readonly flushIntervalMs: number;
  private latest = new Map<Key, unknown>();
  private readonly store: SinkStore;
  /** The fields that make up the key: one, or several (a window's key and start) joined by `|`. */
  private readonly keyFields: string[];

  constructor(
    private readonly settings: PostgresSinkSettings,
    connectionString: string,
    private readonly ctx: SinkContext,
    private readonly deadLetter: (record: unknown, reason: string) => void,
  ) {
    this.delivery = settings.delivery;
    this.keyFields = settings.keyField.split(',').map((f) => f.trim());
    this.flushIntervalMs = settings.flushIntervalMs;
    this.store = new SinkStore(connectionString, ctx);
  }

  async open(): Promise<void> {
    await this.setup();
    if (this.delivery === 'exactly-once') await this.claim();
  }

  process(record: Rec): void {
    const key = this.keyOf(record);
    if (key === undefined) return this.deadLetter(record, `postgres sink: record lacks a usable key field '${this.settings.keyField}'`);
    const value = this.settings.valueField ? getField(record, this.settings.valueField) : record;
    // jsonb holds no undefined: a missing value field is stored as null, as before.
    this.latest.set(key as Key, value === undefined ? null : value);
  }

  /** The record's key: its key field's value, or its key fields' values joined by `|`; undefined when one is missing. */
  private keyOf(record: Rec): Key | undefined {
    if (this.keyFields.length === 1) {
      const key = getField(record, this.keyFields[0]!);
      return usable(key) ? (key as Key) : undefined;
    }
    const parts = this.keyFields.map((f) => getField(record, f));
    return parts.every(usable) ? parts.map(String).join('|') : undefined;
  }

  flush(): Promise<void> {
    if (this.delivery === 'exactly-once') return Promise.resolve();
    return this.write((rows) => this.store.serial((c) => c.query(upsertSql(this.settings.table, 'jsonb_each($1::jsonb)'), [rows])));
  }

  preCommit(checkpoint: number): Promise<void> {
    if (this.delivery === 'at-least-once') return this.flush();
    const { jobId, vertexId, attempt, index } = this.ctx;
    return this.write((rows) =>
      this.store.transaction(async (c) => {
        await this.store.checkFence(c);
        await c.query(
          `INSERT INTO ${PENDING} (job_id, sink, attempt, checkpoint, subtask, rows) VALUES ($1, $2, $3, $4, $5, $6::jsonb)
           ON CONFLICT (job_id, sink, attempt, checkpoint, subtask) DO UPDATE SET rows = ${PENDING}.rows || EXCLUDED.rows`,
          [jobId, vertexId, attempt, checkpoint, index, rows],
        );
      }),
    );
  }

  commit(checkpoint: number): Promise<void> {
    if (this.delivery === 'at-least-once') return Promise.resolve();
    return this.commitWhere('checkpoint <= $4', [checkpoint]);
  }

  async finish(lastCompleted: number): Promise<void> {
    if (this.delivery === 'at-least-once') return this.flush();
    // No checkpoint follows the end of the input: this subtask's remainder is committed with what completed.
    await this.preCommit(2 ** 31 - 1);
    await this.commitWhere('(checkpoint <= $4 OR subtask = $5)', [lastCompleted, this.ctx.index]);
  }

  close(): Promise<void> {
    return this.store.close();
  }

  /**
   * Takes the sink for this attempt: raises the fence and, when the attempt restarts from checkpoint n, commits
   * what older attempts pre-committed up to n and discards the rest (their records are replayed).
   */
  private claim(): Promise<void> {
    const { jobId, vertexId, attempt, recoverFrom } = this.ctx;
    return this.store.transaction(async (c) => {
      await this.store.lock(c);
      await this.store.raiseFence(c);
      if (recoverFrom === undefined) return;
      await this.moveToTable(c, 'attempt < $3 AND checkpoint <= $4', [attempt, recoverFrom]);
      await c.query(`DELETE FROM ${PENDING} WHERE job_id = $1 AND sink = $2 AND attempt < $3`, [jobId, vertexId, attempt]);
    });
  }

  /** Moves this attempt's pending rows that `where` selects (its parameters from $4) into the table, if the fence is still this attempt's. */
  private commitWhere(where: string, params: unknown[]): Promise<void> {
    return this.store.transaction(async (c) => {
      await this.store.lock(c);
      await this.store.checkFence(c);
      await this.moveToTable(c, `attempt = $3 AND ${where}`, [this.ctx.attempt, ...params]);
    });
  }

  /** Upserts the pending rows of this sink that `where` selects into the table, newest checkpoint first per key, and deletes them. */
  private async moveToTable(c: pg.PoolClient, where: string, params: unknown[]): Promise<void> {
    await c.query(
      `WITH moved AS (
         DELETE FROM ${PENDING} WHERE job_id = $1 AND sink = $2 AND ${where} RETURNING checkpoint, rows
       ), latest AS (
         SELECT DISTINCT ON (e.key) e.key, e.value FROM moved, jsonb_each(moved.rows) e ORDER BY e.key, moved.checkpoint DESC
       )
       ${upsertSql(this.settings.table, 'latest')}`,
      [this.ctx.jobId, this.ctx.vertexId, ...params],
    );
  }

  /**
   * Writes what is buffered with `fn`. Taken before any await: records processed meanwhile go into the next
   * write. If the write fails, what it took goes back under anything newer, so the next write includes it.
   */
  private async write(fn: (rows: string) => Promise<unknown>): Promise<void> {
    if (this.latest.size === 0) return;
    const taken = this.latest;
    this.latest = new Map();
    try {
      await this.setup();
      await fn(await encodeRows(taken));
    } catch (err) {
      for (const [k, v] of taken) if (!this.latest.has(k)) this.latest.set(k, v);
      throw err;
    }
  }

  /** Creates the table (and for exactly-once the pending and fence tables) once; retried after a failure. */
  private setup(): Promise<void> {
    const exactlyOnce = this.delivery === 'exactly-once';
    return this.store.setup(
      [
        `CREATE TABLE IF NOT EXISTS "${this.settings.table}" (key text PRIMARY KEY, value jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`,
        ...(exactlyOnce
          ? [
              `CREATE TABLE IF NOT EXISTS ${PENDING} (job_id text, sink text, attempt int, checkpoint int, subtask int,
                 rows jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (job_id, sink, attempt, checkpoint, subtask))`,
            ]
          : []),
      ],
      exactlyOnce,
    );
  }
}

/** Keys encoded between two yields to the event loop: a few milliseconds of work. */
const ENCODE_SLICE = 10_000;

/**
 * The rows as one JSON object (far cheaper to build, send and parse than two text arrays of as many elements),
 * encoded natively slice by slice with a yield between slices: hundreds of thousands of keys would otherwise hold
 * the subtask's event loop for a second or more, right when a barrier or a rescale's handover needs it.
 */
async function encodeRows(rows: Map<Key, unknown>): Promise<string> {
  const parts: string[] = [];
  let slice: Record<string, unknown> = Object.create(null);
  let n = 0;
  for (const [k, v] of rows) {
    slice[String(k)] = v;
    if (++n % ENCODE_SLICE === 0) {
      parts.push(toJson(slice).slice(1, -1));
      slice = Object.create(null);
      await new Promise((r) => setImmediate(r));
    }
  }
  parts.push(toJson(slice).slice(1, -1));
  return `{${parts.filter((p) => p.length).join(',')}}`;
}

/** JSON text of `v`, with bigints as decimal strings (JSON has no bigint; only then is the slower replacer used). */
function toJson(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch {
    return JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x));
  }
}

/** Upserts the (key, value) rows of `source` (a table expression) into the user's table. */
function upsertSql(table: string, source: string): string {
  return `INSERT INTO "${table}" (key, value, updated_at)
          SELECT key, value, now() FROM ${source}
          ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`;
}
