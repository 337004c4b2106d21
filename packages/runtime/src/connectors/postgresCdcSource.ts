import type { EventTimeSettings, PostgresCdcSettings, Rec } from '@keyflow/core';
import pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import type { Logger } from '../logger.ts';
import { BufferedSource, type Fetched, type SplitLag, type SplitReader } from './bufferedSource.ts';
import type { ConnectionProfile } from './connection.ts';

/*
 * Resuming exactly. Postgres decodes a transaction at its commit and sends it whole (begin, its changes, commit),
 * transactions in commit order; a slot resumes at transaction boundaries: it skips the transactions whose commit
 * record lies before the position it starts at. A checkpoint may still fall inside a large transaction, so a split's
 * offset is the commit LSN of the last emitted change's transaction, plus how many of that transaction's changes
 * were emitted when it was cut: '0/16B3748' (that transaction and every one before it went downstream) or
 * '0/16B3748#3' (its first three changes did). Reading resumes at the commit LSN of a cut transaction (it comes
 * again, its first three changes dropped) or just after that of a whole one, and drops whatever the slot still sends
 * at or below the offset. A transaction's last change is held back until its commit message arrives, so the offset
 * it leaves says the transaction is whole.
 *
 * Acknowledging. Postgres keeps the WAL of every transaction the slot has not been told is flushed. The source tells
 * it only what a completed checkpoint covers (completed(n) sends the resume position of checkpoint n's offset), so a
 * recovery from the last completed checkpoint always finds its changes in the slot.
 */

/** Where a split stands in the stream of changes: the transaction (by commit LSN) and how much of it was emitted. */
export interface Position {
  commit: bigint;
  /** Changes of that transaction emitted: 'all' once its commit arrived. */
  changes: number | 'all';
}

/** How long `next` waits for changes before it comes back empty. */
const WAIT_MS = 500;

/** Changes read ahead of the split's buffer at most: then the replication socket is paused. */
const QUEUE_MAX = 1024;

/** How often Postgres is told the flushed position (also while the socket is paused), well within wal_sender_timeout. */
const FEEDBACK_MS = 10_000;

/** How long connecting may take before it counts as failed (and is tried again). */
const CONNECT_TIMEOUT_MS = 10_000;

/** How long opening waits for a slot that a previous reader's session still holds (it is closing). */
const SLOT_RELEASE_MS = 3000;

/** Column types whose values pg parses as local-time Dates: they are given back as the local date or time text. */
const LOCAL_TIME: Record<number, 'date' | 'timestamp'> = { 1082: 'date', 1182: 'date', 1114: 'timestamp', 1115: 'timestamp' };

/** What a changes source reads: a publication through a slot. */
export interface PostgresCdcConfig {
  publication: string;
  slot: string;
  eventTime: EventTimeSettings;
}

/**
 * The inserts, updates and deletes of a publication's tables, streamed through a logical replication slot (pgoutput)
 * in commit order: `{op, schema, table, new, old, lsn, ts}`. One split; the slot is acknowledged only after a
 * checkpoint covering the changes completed, so it keeps everything a recovery may need again.
 */
export class PostgresCdcSource extends BufferedSource {
  /** The flush position Postgres was told (or the slot had): it never moves back. */
  private confirmed = 0n;
  /** Each checkpoint's offset, taken at its barrier, until the checkpoint completes. */
  private readonly checkpoints = new Map<number, string>();
  /** The open replication session, to send acknowledgements through. */
  private stream: ChangeReader | undefined;

  constructor(
    protected readonly config: PostgresCdcConfig,
    /** The connection profile (resolved when a connection is opened). */
    private readonly connection: () => Promise<ConnectionProfile>,
    index: number,
    parallelism: number,
    deadLetter: (record: unknown, reason: string) => void,
    protected override readonly log: Logger,
  ) {
    super(1, index, parallelism, config.eventTime, 'json', deadLetter, log);
  }

  static fromSettings(
    s: PostgresCdcSettings,
    connection: () => Promise<ConnectionProfile>,
    index: number,
    parallelism: number,
    deadLetter: (record: unknown, reason: string) => void,
    log: Logger,
  ): PostgresCdcSource {
    return new PostgresCdcSource({ publication: s.publication, slot: s.slot, eventTime: s }, connection, index, parallelism, deadLetter, log);
  }

  /** Checks that changes can be read (wal_level, the REPLICATION attribute, the publication) and makes the slot: a clear error before the job runs. */
  async open(): Promise<void> {
    if (!this.splits.length) return;
    const db = new pg.Client(clientConfig(await this.connection()));
    db.on('error', () => {});
    await db.connect();
    try {
      await prepare(db, this.config);
    } finally {
      await db.end().catch(() => {});
    }
  }

  snapshot(checkpoint: number): void {
    const offset = this.offsets.get(0);
    if (typeof offset === 'string') this.checkpoints.set(checkpoint, offset);
  }

  async completed(checkpoint: number): Promise<void> {
    let offset: string | undefined;
    for (const [n, o] of this.checkpoints)
      if (n <= checkpoint) {
        offset = o;
        this.checkpoints.delete(n);
      }
    if (offset === undefined) return;
    const flush = resumeLsn(parsePosition(offset));
    if (flush <= this.confirmed) return;
    this.confirmed = flush;
    this.stream?.feedback();
  }

  protected splitName(): string {
    return this.config.slot;
  }

  protected async openSplit(_split: number, offset: unknown): Promise<SplitReader> {
    const profile = await this.connection();
    const db = new pg.Client(clientConfig(profile));
    db.on('error', () => {});
    await db.connect();
    let reader: ChangeReader | undefined;
    try {
      const slotFlush = await prepare(db, this.config);
      if (slotFlush > this.confirmed) this.confirmed = slotFlush;
      // A new job starts where the slot stands: nothing of the transaction committing there (if one does) emitted.
      const start = offset === undefined ? { commit: slotFlush, changes: 0 } : parsePosition(offset);
      if (resumeLsn(start) < slotFlush)
        this.log.warn(
          { slot: this.config.slot, offset: formatPosition(start), confirmedFlush: formatLsn(slotFlush) },
          'the slot was acknowledged past the offset restored: changes between them cannot be read again',
        );
      await slotReleased(db, this.config.slot);
      reader = new ChangeReader(
        this.config,
        clientConfig(profile),
        db,
        start,
        () => this.confirmed,
        this.log,
        () => {
          if (this.stream === reader) this.stream = undefined;
        },
      );
      if (offset === undefined) reader.from = formatPosition(start);
      this.stream = reader;
      await reader.open();
      return reader;
    } catch (err) {
      if (reader) await reader.close();
      else await db.end().catch(() => {});
      throw err;
    }
  }
}

/** The transaction being read: its commit, how many of its changes came, how many of those to drop. */
interface Transaction {
  commit: bigint;
  commitText: string;
  ts: number;
  seen: number;
  skip: number;
  /** Its latest change, held until the next one or its commit says whether it is the last. */
  held: Rec | undefined;
}

/** One replication session of the slot, adapted to pulls: changes queue up as records, the socket paused when the queue is full. */
class ChangeReader implements SplitReader {
  /** A new job's start (where the slot stood), pinned as the offset before any change. */
  from: string | undefined;
  private readonly service: LogicalReplicationService;
  private readonly queue: Fetched[] = [];
  private txn: Transaction | undefined;
  private failure: Error | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private arrived: (() => void) | undefined;
  private drained: (() => void) | undefined;
  private failed: ((err: Error) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private warnedTruncate = false;

  constructor(
    private readonly config: PostgresCdcConfig,
    client: pg.ClientConfig,
    /** A normal connection: lag queries. */
    private readonly db: pg.Client,
    /** Where reading resumes: changes at or below it are dropped. */
    private readonly start: Position,
    /** The flush position to tell Postgres. */
    private readonly flush: () => bigint,
    private readonly log: Logger,
    private readonly onClose: () => void,
  ) {
    // Acknowledged by the source alone, after checkpoints: never the library's automatic acknowledgement of what arrived.
    this.service = new LogicalReplicationService(client, { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } });
    this.service.on('error', (err) => this.fail(err));
    this.service.on('data', (lsn, msg) => this.onMessage(lsn, msg as Pgoutput.Message));
    this.service.on('heartbeat', (_lsn, _ts, shouldRespond) => {
      if (shouldRespond) this.feedback();
    });
  }

  /** Streams from the slot; resolves once Postgres streams, rejects with why it would not. */
  async open(): Promise<void> {
    const started = new Promise<void>((resolve, reject) => {
      this.failed = reject;
      this.service.once('start', () => resolve());
    });
    const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [this.config.publication] });
    this.service.subscribe(plugin, this.config.slot, formatLsn(resumeLsn(this.start))).then(
      () => this.fail(new Error('the replication stream ended')),
      (err: Error) => this.fail(err),
    );
    await started;
    this.failed = undefined;
    this.feedback();
    this.timer = setInterval(() => this.feedback(), FEEDBACK_MS);
    this.timer.unref();
  }

  async next(max: number): Promise<Fetched[]> {
    if (!this.queue.length && !this.failure && !this.closed)
      await new Promise<void>((resolve) => {
        const timeout = setTimeout(resolve, WAIT_MS);
        this.arrived = () => {
          clearTimeout(timeout);
          resolve();
        };
      });
    this.arrived = undefined;
    if (!this.queue.length && this.failure) throw this.failure;
    const out = this.queue.splice(0, max);
    if (out.length) this.drained?.();
    return out;
  }

  /** Bytes of WAL the slot keeps: the server's position minus what was acknowledged. */
  async lag(): Promise<SplitLag> {
    const { rows } = await this.db.query<{ bytes: number | null }>(
      'SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::float8 AS bytes FROM pg_replication_slots WHERE slot_name = $1',
      [this.config.slot],
    );
    return { bytes: Math.max(0, rows[0]?.bytes ?? 0) };
  }

  /** Tells Postgres the flushed position (a standby status update): what the slot may forget. */
  feedback(): void {
    const flush = this.flush();
    // The library reports the LSN it is given plus one.
    if (flush > 0n && !this.closed) this.service.acknowledge(formatLsn(flush - 1n)).catch((err: Error) => this.fail(err));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      clearInterval(this.timer);
      this.arrived?.();
      this.drained?.();
      this.onClose();
      await this.service.destroy().catch(() => {});
      await this.db.end().catch(() => {});
    })();
    return this.closing;
  }

  private fail(err: Error): void {
    if (this.closed || this.failure) return;
    this.failure = err;
    this.failed?.(err);
    this.arrived?.();
  }

  /** A pgoutput message: changes become records; begin and commit frame them; relations and types only inform the parser. */
  private async onMessage(lsn: string, msg: Pgoutput.Message): Promise<void> {
    if (this.closed) return;
    switch (msg.tag) {
      case 'begin': {
        const commit = parseLsn(msg.commitLsn ?? '0/0');
        this.txn = {
          commit,
          commitText: formatLsn(commit),
          ts: Number((msg.commitTime as bigint) / 1000n),
          seen: 0,
          skip: changesToSkip(this.start, commit),
          held: undefined,
        };
        return;
      }
      case 'insert':
      case 'update':
      case 'delete': {
        const txn = this.txn;
        if (!txn) throw new Error(`a ${msg.tag} outside a transaction at ${lsn}`);
        txn.seen++;
        if (txn.seen <= txn.skip) return;
        if (txn.held) this.push({ offset: formatPosition({ commit: txn.commit, changes: txn.seen - 1 }), data: txn.held });
        txn.held = changeRecord(msg, lsn, txn.ts);
        break;
      }
      case 'commit': {
        const txn = this.txn;
        this.txn = undefined;
        if (txn?.held) this.push({ offset: txn.commitText, data: txn.held });
        break;
      }
      case 'truncate':
        if (!this.warnedTruncate)
          this.log.warn(
            { slot: this.config.slot, tables: msg.relations.map((r) => `${r.schema}.${r.name}`) },
            'a TRUNCATE is not a change this source emits: it is skipped',
          );
        this.warnedTruncate = true;
        return;
      default:
        return;
    }
    // Backpressure: the library pauses the socket until this handler resolves.
    while (this.queue.length >= QUEUE_MAX && !this.closed) await new Promise<void>((resolve) => (this.drained = resolve));
  }

  private push(m: Fetched): void {
    this.queue.push(m);
    this.arrived?.();
  }
}

/** A change message as a record: `old` is the old row or its key, as the table's REPLICA IDENTITY gives it. */
function changeRecord(msg: Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete, lsn: string, ts: number): Rec {
  const { relation } = msg;
  const types = new Map(relation.columns.map((c) => [c.name, c.typeOid]));
  const old = msg.tag === 'insert' ? null : (msg.old ?? msg.key);
  return {
    op: msg.tag,
    schema: relation.schema,
    table: relation.name,
    new: msg.tag === 'delete' ? null : row(msg.new, types),
    old: old ? row(old, types) : null,
    lsn: formatLsn(parseLsn(lsn)),
    ts,
  };
}

/** A tuple as plain fields; an unchanged TOASTed column (not sent) is left out. */
function row(tuple: Record<string, unknown>, types: Map<string, number>): Rec {
  const out: Rec = {};
  for (const [name, value] of Object.entries(tuple)) if (value !== undefined) out[name] = plain(value, types.get(name) ?? 0);
  return out;
}

/** A parsed column value as a record field: dates and times as text, bytes as Postgres's hex text. */
function plain(value: unknown, typeOid: number): unknown {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) return null;
    const local = LOCAL_TIME[typeOid];
    return local === 'date' ? localDate(value) : local === 'timestamp' ? `${localDate(value)}T${localTime(value)}` : value.toISOString();
  }
  if (value instanceof Uint8Array) return `\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`;
  if (Array.isArray(value)) return value.map((v) => plain(v, typeOid));
  return value;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');
const localDate = (d: Date) => `${pad(d.getFullYear(), 4)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
const localTime = (d: Date) => `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;

/**
 * Checks that the connection can read changes and makes the slot if it is missing; the slot's confirmed flush
 * position. Each failure says what to change.
 */
async function prepare(db: pg.Client, config: PostgresCdcConfig): Promise<bigint> {
  const { rows } = await db.query<{ wal_level: string; user: string; replication: boolean | null; publication: boolean; database: string }>(
    `SELECT current_setting('wal_level') AS wal_level, current_user AS "user", current_database() AS database,
            (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS replication,
            EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1) AS publication`,
    [config.publication],
  );
  const s = rows[0]!;
  if (s.wal_level !== 'logical') throw new Error(`wal_level is ${s.wal_level}: logical replication needs wal_level=logical`);
  if (!s.replication) throw new Error(`the user ${s.user} lacks the REPLICATION attribute: ALTER ROLE ${s.user} REPLICATION`);
  if (!s.publication)
    throw new Error(
      `the publication ${config.publication} does not exist in database ${s.database}: CREATE PUBLICATION ${config.publication} FOR TABLE …`,
    );
  let slot = await slotOf(db, config.slot);
  if (!slot) {
    try {
      await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [config.slot]);
    } catch (err) {
      // Another reader made it meanwhile.
      if ((err as { code?: string }).code !== '42710') throw err;
    }
    slot = await slotOf(db, config.slot);
  }
  if (!slot) throw new Error(`the replication slot ${config.slot} could not be made`);
  if (slot.slot_type !== 'logical' || slot.plugin !== 'pgoutput')
    throw new Error(
      `the replication slot ${config.slot} is not a logical pgoutput slot (${slot.slot_type}, ${slot.plugin ?? 'no plugin'}): name another slot`,
    );
  if (slot.database !== s.database) throw new Error(`the replication slot ${config.slot} belongs to database ${slot.database}, not ${s.database}`);
  if (slot.wal_status === 'lost' || !slot.confirmed_flush_lsn)
    throw new Error(`the replication slot ${config.slot} lost WAL it needed (max_slot_wal_keep_size): drop it to start over`);
  return parseLsn(slot.confirmed_flush_lsn);
}

interface SlotRow {
  slot_type: string;
  plugin: string | null;
  database: string | null;
  confirmed_flush_lsn: string | null;
  wal_status: string | null;
  active_pid: number | null;
}

async function slotOf(db: pg.Client, slot: string): Promise<SlotRow | undefined> {
  const { rows } = await db.query<SlotRow>(
    'SELECT slot_type, plugin, database, confirmed_flush_lsn::text, wal_status, active_pid FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  return rows[0];
}

/** Waits a little for a session that still holds the slot (a previous reader closing); a live one makes starting fail after. */
async function slotReleased(db: pg.Client, slot: string): Promise<void> {
  const deadline = Date.now() + SLOT_RELEASE_MS;
  while ((await slotOf(db, slot))?.active_pid && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

/** A connection profile as node-postgres settings (its user and password go into the URL: the URL's would win). */
function clientConfig(c: ConnectionProfile): pg.ClientConfig {
  const url = new URL(c.url);
  if (c.username) url.username = encodeURIComponent(c.username);
  if (c.password) url.password = encodeURIComponent(c.password);
  return { connectionString: url.toString(), connectionTimeoutMillis: CONNECT_TIMEOUT_MS, ...(c.tls && { ssl: { ...c.tls } }) };
}

/** An LSN's text ('16/B374D848', either half zero-padded or not) as a number. */
export function parseLsn(text: string): bigint {
  const m = /^([0-9A-F]{1,8})\/([0-9A-F]{1,8})$/i.exec(text);
  if (!m) throw new Error(`not an LSN: ${text}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** An LSN as Postgres writes it: the two halves in hex, '0/16B3748'. */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** A split's offset as its position: '0/16B3748' (that transaction whole) or '0/16B3748#3' (its first 3 changes). */
export function parsePosition(offset: unknown): Position {
  const m = typeof offset === 'string' ? /^([^#]+)(?:#(\d+))?$/.exec(offset) : null;
  if (!m) throw new Error(`not an offset of a changes source: ${JSON.stringify(offset)}`);
  return { commit: parseLsn(m[1]!), changes: m[2] === undefined ? 'all' : Number(m[2]) };
}

export function formatPosition(p: Position): string {
  return p.changes === 'all' ? formatLsn(p.commit) : `${formatLsn(p.commit)}#${p.changes}`;
}

/** Where the slot is started (and acknowledged) for a position: it skips transactions committed before it. */
export function resumeLsn(p: Position): bigint {
  return p.changes === 'all' ? p.commit + 1n : p.commit;
}

/** How many changes of the transaction committed at `commit` a reader resuming at `p` drops (all of those at or before it). */
export function changesToSkip(p: Position, commit: bigint): number {
  if (commit < p.commit) return Infinity;
  if (commit > p.commit) return 0;
  return p.changes === 'all' ? Infinity : p.changes;
}
