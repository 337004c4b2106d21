import pg from 'pg';
import { SinkFencedError, type SinkContext } from './sink.ts';

/** Which attempt of a job owns each transactional sink (its fence), shared by every sink kind. */
export const FENCE = 'keyflow_sink_fence';

/**
 * Whether a Postgres error may pass by itself (the server unreachable, restarting, out of connections, a
 * conflict) rather than being about what was written: those are retried, the others fail the subtask.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof SinkFencedError) return false;
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return true; // a network error, or a timeout of the driver
  return /^(08|53|57P|40)/.test(code);
}

/**
 * A transactional sink's database (DESIGN §8): one connection at a time, its writes in call order (no interleaved
 * transactions), the sink's lock, and its fence. The Postgres sink keeps pre-committed rows here, broker sinks their
 * outbox; both raise the fence when an attempt takes the sink, and hold it in every transaction that adds or
 * commits output, so a zombie subtask of an older attempt can do neither.
 */
export class SinkStore {
  private readonly pool: pg.Pool;
  /** Every write, in call order. */
  private queue: Promise<unknown> = Promise.resolve();
  private ready: Promise<void> | undefined;

  constructor(
    connectionString: string,
    private readonly ctx: Pick<SinkContext, 'jobId' | 'vertexId' | 'attempt'>,
  ) {
    // One connection at a time; the pool replaces it when Postgres dropped it (an outage the sink outlives).
    // A frozen process holding the fence row in an open transaction would block a new attempt's claim for
    // good: Postgres ends such a session after 10 s.
    this.pool = new pg.Pool({ connectionString, max: 1, connectionTimeoutMillis: 10_000, idle_in_transaction_session_timeout: 10_000 });
    this.pool.on('error', () => {}); // an idle connection that died; the next write gets a fresh one
  }

  /** Runs `fn` on the connection once the writes before it are done. */
  serial<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      const c = await this.pool.connect();
      // A checked-out client's connection errors are not the pool's to handle: the query in flight rejects with them.
      const ignore = () => {};
      c.on('error', ignore);
      try {
        const out = await fn(c);
        c.off('error', ignore);
        c.release();
        return out;
      } catch (err) {
        c.off('error', ignore);
        // A connection that failed mid-way is not reused.
        c.release(isTransient(err) ? (err as Error) : undefined);
        throw err;
      }
    });
    this.queue = run.catch(() => {});
    return run;
  }

  transaction(fn: (c: pg.PoolClient) => Promise<void>): Promise<void> {
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

  /** Takes the sink's lock for the transaction: its commits and claims run one at a time, in order. */
  async lock(c: pg.PoolClient): Promise<void> {
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`keyflow_sink:${this.ctx.jobId}:${this.ctx.vertexId}`]);
  }

  /** Raises the fence to this attempt (under the lock); a newer attempt's fence makes this one a zombie. */
  async raiseFence(c: pg.PoolClient): Promise<void> {
    const { jobId, vertexId, attempt } = this.ctx;
    const { rows } = await c.query<{ attempt: number }>(
      `INSERT INTO ${FENCE} (job_id, sink, attempt) VALUES ($1, $2, $3)
       ON CONFLICT (job_id, sink) DO UPDATE SET attempt = GREATEST(${FENCE}.attempt, EXCLUDED.attempt) RETURNING attempt`,
      [jobId, vertexId, attempt],
    );
    if (rows[0]!.attempt !== attempt) throw new SinkFencedError(attempt, rows[0]!.attempt);
  }

  /** Holds the fence row for the transaction: a new attempt cannot take the sink over until it ends. */
  async checkFence(c: pg.PoolClient): Promise<void> {
    const { rows } = await c.query<{ attempt: number }>(`SELECT attempt FROM ${FENCE} WHERE job_id = $1 AND sink = $2 FOR SHARE`, [
      this.ctx.jobId,
      this.ctx.vertexId,
    ]);
    const current = rows[0]?.attempt;
    if (current !== this.ctx.attempt) throw new SinkFencedError(this.ctx.attempt, current ?? 0);
  }

  /** Creates the sink's tables (`ddl`, and the fence when `fenced`) once; retried after a failure. */
  setup(ddl: string[], fenced: boolean): Promise<void> {
    this.ready ??= this.serial(async (c) => {
      // Parallel subtasks create the tables at once; the advisory lock keeps CREATE TABLE IF NOT EXISTS from racing.
      await c.query(`SELECT pg_advisory_lock(hashtext('keyflow_sink_setup'))`);
      try {
        for (const statement of ddl) await c.query(statement);
        if (fenced) await c.query(`CREATE TABLE IF NOT EXISTS ${FENCE} (job_id text, sink text, attempt int NOT NULL, PRIMARY KEY (job_id, sink))`);
      } finally {
        await c.query(`SELECT pg_advisory_unlock(hashtext('keyflow_sink_setup'))`);
      }
    }).catch((err) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  /** Lets the writes in flight end, then closes the connection. */
  async close(): Promise<void> {
    await this.queue.catch(() => {});
    await this.pool.end().catch(() => {});
  }
}
