import type { Delivery, Rec } from '@keyflow/core';
import pg from 'pg';
import { isTransient } from './postgresSink.ts';
import { SinkFencedError, type Sink, type SinkContext } from './sink.ts';

/** Pre-committed messages of transactional message sinks; the fence is the one Postgres sinks use. */
const OUTBOX = 'keyflow_sink_outbox';
const FENCE = 'keyflow_sink_fence';

/** Messages per outbox row at most: rows stay small enough to publish and delete one at a time. */
const ROW_MESSAGES = 5_000;

/** A message for a broker: its id (stable across replays of the same pre-committed output) and its JSON text. */
export interface OutMessage {
  id: string;
  payload: string;
}

/**
 * A sink that publishes records as messages to a broker (NATS, Redis Streams) with its delivery guarantee.
 *
 * - at-least-once: `flush` publishes what is buffered; a recovery replays and publishes again.
 * - exactly-once: a two-phase commit through an outbox in the sinks' database, like the Postgres sink's. At barrier
 *   n the subtask inserts what it holds into `keyflow_sink_outbox` as rows tagged (job, sink, attempt, n, subtask,
 *   row), fenced by the attempt. When n completes, the first subtask there publishes all rows up to n, each message with the id
 *   `job.sink.attempt.n.subtask.row.i`, and deletes each row once published. A crash between publishing and the
 *   delete publishes the row again under the same ids, and the broker's idempotence (`publish`) turns that into a
 *   no-op. A new attempt (under the fence's lock) publishes what older attempts pre-committed up to the checkpoint
 *   it restarts from and discards the rest, whose records are replayed.
 */
export abstract class MessageSink implements Sink {
  readonly delivery: Delivery;
  private buffer: string[] = [];
  private readonly pool: pg.Pool;
  private ready: Promise<void> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  /** At-least-once: messages published so far, for ids unique within the attempt. */
  private published = 0;

  constructor(
    delivery: Delivery,
    databaseUrl: string,
    protected readonly ctx: SinkContext,
  ) {
    this.delivery = delivery;
    this.pool = new pg.Pool({ connectionString: databaseUrl, max: 1, connectionTimeoutMillis: 10_000, idle_in_transaction_session_timeout: 10_000 });
    this.pool.on('error', () => {});
  }

  /** Publishes the messages, in order; one whose id the broker has seen must not be published twice (exactly-once). */
  protected abstract publish(messages: OutMessage[]): Promise<void>;
  /** Connects to the broker. */
  protected abstract connect(): Promise<void>;
  protected abstract disconnect(): Promise<void>;

  async open(): Promise<void> {
    await this.connect();
    if (this.delivery === 'exactly-once') await this.claim();
  }

  process(record: Rec): void {
    this.buffer.push(toJson(record));
  }

  async flush(): Promise<void> {
    if (this.delivery === 'exactly-once' || this.buffer.length === 0) return;
    const taken = this.take();
    // Ids move on only once published: a retry of a failed flush sends the same ids, so what did land is not doubled.
    const base = `${this.ctx.jobId}.${this.ctx.vertexId}.${this.ctx.attempt}.${this.ctx.index}.live.${this.published}`;
    try {
      await this.publish(taken.map((payload, i) => ({ id: `${base}.${i}`, payload })));
      this.published += taken.length;
    } catch (err) {
      this.buffer = [...taken, ...this.buffer];
      throw err;
    }
  }

  preCommit(checkpoint: number): Promise<void> {
    if (this.delivery === 'at-least-once') return this.flush();
    const taken = this.take();
    if (taken.length === 0) return Promise.resolve();
    const { jobId, vertexId, attempt, index } = this.ctx;
    return this.transaction(async (c) => {
      await this.checkFence(c);
      for (let row = 0; row * ROW_MESSAGES < taken.length; row++)
        await c.query(
          `INSERT INTO ${OUTBOX} (job_id, sink, attempt, checkpoint, subtask, row, messages) VALUES ($1, $2, $3, $4, $5,
             COALESCE((SELECT max(row) + 1 FROM ${OUTBOX} WHERE job_id = $1 AND sink = $2 AND attempt = $3 AND checkpoint = $4 AND subtask = $5), 0), $6)`,
          [jobId, vertexId, attempt, checkpoint, index, taken.slice(row * ROW_MESSAGES, (row + 1) * ROW_MESSAGES).join('\n')],
        );
    }).catch((err) => {
      this.buffer = [...taken, ...this.buffer];
      throw err;
    });
  }

  commit(checkpoint: number): Promise<void> {
    if (this.delivery === 'at-least-once') return Promise.resolve();
    // Whichever subtask gets there first publishes every subtask's rows up to n (one a rescale took away included).
    return this.release('attempt = $3 AND checkpoint <= $4', [this.ctx.attempt, checkpoint], true);
  }

  async finish(lastCompleted: number): Promise<void> {
    if (this.delivery === 'at-least-once') return this.flush();
    // No checkpoint follows the end of the input: what is left is published with what completed.
    await this.preCommit(2 ** 31 - 1);
    await this.release('attempt = $3 AND (checkpoint <= $5 OR subtask = $4)', [this.ctx.attempt, this.ctx.index, lastCompleted], true);
  }

  async close(): Promise<void> {
    await this.queue.catch(() => {});
    await this.pool.end().catch(() => {});
    await this.disconnect().catch(() => {});
  }

  private take(): string[] {
    const taken = this.buffer;
    this.buffer = [];
    return taken;
  }

  /** Takes the sink for this attempt and settles what older attempts pre-committed (see the class). */
  private async claim(): Promise<void> {
    await this.setup();
    const { jobId, vertexId, attempt, recoverFrom } = this.ctx;
    await this.serial(async (c) => {
      await c.query('BEGIN');
      try {
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [this.lockName()]);
        const { rows } = await c.query<{ attempt: number }>(
          `INSERT INTO ${FENCE} (job_id, sink, attempt) VALUES ($1, $2, $3)
           ON CONFLICT (job_id, sink) DO UPDATE SET attempt = GREATEST(${FENCE}.attempt, EXCLUDED.attempt) RETURNING attempt`,
          [jobId, vertexId, attempt],
        );
        if (rows[0]!.attempt !== attempt) throw new SinkFencedError(attempt, rows[0]!.attempt);
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK').catch(() => {});
        throw err;
      }
    });
    if (recoverFrom === undefined) return;
    await this.release('attempt < $3 AND checkpoint <= $4', [attempt, recoverFrom], false);
    await this.serial((c) => c.query(`DELETE FROM ${OUTBOX} WHERE job_id = $1 AND sink = $2 AND attempt < $3`, [jobId, vertexId, attempt]));
  }

  /**
   * Publishes the outbox rows of this sink that `where` selects (its parameters from $3), in checkpoint order, and
   * deletes each once published; under the sink's lock, with the fence checked when `fenced` (a zombie publishes nothing).
   */
  private release(where: string, params: unknown[], fenced: boolean): Promise<void> {
    const { jobId, vertexId } = this.ctx;
    return this.transaction(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [this.lockName()]);
      if (fenced) await this.checkFence(c);
      const { rows } = await c.query<{ attempt: number; checkpoint: number; subtask: number; row: number }>(
        `SELECT attempt, checkpoint, subtask, row FROM ${OUTBOX} WHERE job_id = $1 AND sink = $2 AND ${where} ORDER BY checkpoint, attempt, subtask, row`,
        [jobId, vertexId, ...params],
      );
      for (const r of rows) {
        const key = [jobId, vertexId, r.attempt, r.checkpoint, r.subtask, r.row];
        const got = await c.query<{ messages: string }>(
          `SELECT messages FROM ${OUTBOX} WHERE job_id = $1 AND sink = $2 AND attempt = $3 AND checkpoint = $4 AND subtask = $5 AND row = $6`,
          key,
        );
        const id = key.join('.');
        await this.publish(got.rows[0]!.messages.split('\n').map((payload, i) => ({ id: `${id}.${i}`, payload })));
        await c.query(
          `DELETE FROM ${OUTBOX} WHERE job_id = $1 AND sink = $2 AND attempt = $3 AND checkpoint = $4 AND subtask = $5 AND row = $6`,
          key,
        );
      }
    });
  }

  private async checkFence(c: pg.PoolClient): Promise<void> {
    const { rows } = await c.query<{ attempt: number }>(`SELECT attempt FROM ${FENCE} WHERE job_id = $1 AND sink = $2 FOR SHARE`, [
      this.ctx.jobId,
      this.ctx.vertexId,
    ]);
    const current = rows[0]?.attempt;
    if (current !== this.ctx.attempt) throw new SinkFencedError(this.ctx.attempt, current ?? 0);
  }

  private lockName(): string {
    return `keyflow_sink:${this.ctx.jobId}:${this.ctx.vertexId}`;
  }

  private setup(): Promise<void> {
    this.ready ??= this.serial(async (c) => {
      await c.query(`SELECT pg_advisory_lock(hashtext('keyflow_sink_setup'))`);
      try {
        await c.query(`CREATE TABLE IF NOT EXISTS ${FENCE} (job_id text, sink text, attempt int NOT NULL, PRIMARY KEY (job_id, sink))`);
        await c.query(
          `CREATE TABLE IF NOT EXISTS ${OUTBOX} (job_id text, sink text, attempt int, checkpoint int, subtask int, row int,
             messages text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (job_id, sink, attempt, checkpoint, subtask, row))`,
        );
      } finally {
        await c.query(`SELECT pg_advisory_unlock(hashtext('keyflow_sink_setup'))`);
      }
    }).catch((err) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  private serial<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      const c = await this.pool.connect();
      const ignore = () => {};
      c.on('error', ignore);
      try {
        const out = await fn(c);
        c.off('error', ignore);
        c.release();
        return out;
      } catch (err) {
        c.off('error', ignore);
        c.release(isTransient(err) ? (err as Error) : undefined);
        throw err;
      }
    });
    this.queue = run.catch(() => {});
    return run;
  }

  private transaction(fn: (c: pg.PoolClient) => Promise<void>): Promise<void> {
    return this.serial(async (c) => {
      await c.query('BEGIN');
      try {
        await fn(c);
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK').catch(() => {});
        throw err;
      }
    });
  }
}

/** JSON text of a record, with bigints as decimal strings. */
function toJson(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch {
    return JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x));
  }
}
