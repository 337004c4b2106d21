import type { Delivery, Rec } from '@keyflow/core';
import type { Sink, SinkContext } from './sink.ts';
import { SinkStore } from './sinkStore.ts';

/** Pre-committed messages of transactional message sinks (their fence: SinkStore's, as Postgres sinks'). */
const OUTBOX = 'keyflow_sink_outbox';

/** Messages per outbox row at most: rows stay small enough to publish and delete one at a time. */
const ROW_MESSAGES = 5_000;

/** At-least-once: how often buffered messages are published at the latest, as a channel's linger, not the subtask's second. */
const AT_LEAST_ONCE_FLUSH_MS = 5;

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
  readonly flushIntervalMs: number | undefined;
  private buffer: string[] = [];
  private readonly store: SinkStore;
  /** At-least-once: messages published so far, for ids unique within the attempt. */
  private published = 0;

  constructor(
    delivery: Delivery,
    databaseUrl: string,
    protected readonly ctx: SinkContext,
  ) {
    this.delivery = delivery;
    this.flushIntervalMs = delivery === 'at-least-once' ? AT_LEAST_ONCE_FLUSH_MS : undefined;
    this.store = new SinkStore(databaseUrl, ctx);
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

  buffered(): number {
    return this.buffer.length;
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
    return this.store
      .transaction(async (c) => {
        await this.store.checkFence(c);
        for (let row = 0; row * ROW_MESSAGES < taken.length; row++)
          await c.query(
            `INSERT INTO ${OUTBOX} (job_id, sink, attempt, checkpoint, subtask, row, messages) VALUES ($1, $2, $3, $4, $5,
             COALESCE((SELECT max(row) + 1 FROM ${OUTBOX} WHERE job_id = $1 AND sink = $2 AND attempt = $3 AND checkpoint = $4 AND subtask = $5), 0), $6)`,
            [jobId, vertexId, attempt, checkpoint, index, taken.slice(row * ROW_MESSAGES, (row + 1) * ROW_MESSAGES).join('\n')],
          );
      })
      .catch((err) => {
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
    await this.store.close();
    await this.disconnect().catch(() => {});
  }

  private take(): string[] {
    const taken = this.buffer;
    this.buffer = [];
    return taken;
  }

  /** Takes the sink for this attempt and settles what older attempts pre-committed (see the class). */
  private async claim(): Promise<void> {
    await this.store.setup(
      [
        `CREATE TABLE IF NOT EXISTS ${OUTBOX} (job_id text, sink text, attempt int, checkpoint int, subtask int, row int,
           messages text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (job_id, sink, attempt, checkpoint, subtask, row))`,
      ],
      true,
    );
    const { jobId, vertexId, attempt, recoverFrom } = this.ctx;
    await this.store.transaction(async (c) => {
      await this.store.lock(c);
      await this.store.raiseFence(c);
    });
    if (recoverFrom === undefined) return;
    await this.release('attempt < $3 AND checkpoint <= $4', [attempt, recoverFrom], false);
    await this.store.serial((c) => c.query(`DELETE FROM ${OUTBOX} WHERE job_id = $1 AND sink = $2 AND attempt < $3`, [jobId, vertexId, attempt]));
  }

  /**
   * Publishes the outbox rows of this sink that `where` selects (its parameters from $3), in checkpoint order, and
   * deletes each once published; under the sink's lock, with the fence checked when `fenced` (a zombie publishes nothing).
   */
  private release(where: string, params: unknown[], fenced: boolean): Promise<void> {
    const { jobId, vertexId } = this.ctx;
    return this.store.transaction(async (c) => {
      await this.store.lock(c);
      if (fenced) await this.store.checkFence(c);
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
}

/** JSON text of a record, with bigints as decimal strings. */
function toJson(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch {
    return JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x));
  }
}
