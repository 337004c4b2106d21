import { getField, type Key, type PostgresSinkSettings, type Rec } from '@keyflow/core';
import pg from 'pg';
import type { Sink } from './sink.ts';

/**
 * Upserts the latest value per key into a user table (key text primary key, value jsonb). Updates to one key
 * between two flushes collapse into one row write. Plain SQL through `pg`: the table is the user's, not part of
 * Keyflow's Prisma schema, and a bulk `unnest` upsert is one round trip per flush.
 */
export class PostgresSink implements Sink {
  private latest = new Map<Key, unknown>();
  private ready: Promise<void> | undefined;
  private readonly client: pg.Client;

  constructor(
    private readonly settings: PostgresSinkSettings,
    connectionString: string,
    private readonly deadLetter: (record: unknown, reason: string) => void,
  ) {
    this.client = new pg.Client({ connectionString });
  }

  process(record: Rec): void {
    const key = getField(record, this.settings.keyField);
    if (key === undefined || key === null || typeof key === 'object')
      return this.deadLetter(record, `postgres sink: record lacks a usable key field '${this.settings.keyField}'`);
    const value = this.settings.valueField ? getField(record, this.settings.valueField) : record;
    // jsonb holds no undefined: a missing value field is stored as null, as before.
    this.latest.set(key as Key, value === undefined ? null : value);
  }

  async flush(): Promise<void> {
    if (this.latest.size === 0) return;
    // Taken before any await: records processed while the upsert runs go into the next flush.
    const latest = this.latest;
    this.latest = new Map();
    await (this.ready ??= this.open());
    // The encoding below takes a while for many keys: let whoever called flush (a barrier) go on first.
    await new Promise((r) => setImmediate(r));
    const rows: Record<string, unknown> = Object.create(null);
    for (const [k, v] of latest) rows[String(k)] = v;
    const table = this.settings.table;
    // One JSON object, encoded natively, is far cheaper to build than two text arrays of as many elements.
    await this.client.query(
      `INSERT INTO "${table}" (key, value, updated_at)
       SELECT key, value, now() FROM jsonb_each($1::jsonb)
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`,
      [toJson(rows)],
    );
  }

  private async open(): Promise<void> {
    await this.client.connect();
    const table = this.settings.table;
    // Parallel subtasks create the table at once; the advisory lock keeps CREATE TABLE IF NOT EXISTS from racing.
    await this.client.query('SELECT pg_advisory_lock(hashtext($1))', [table]);
    try {
      await this.client.query(
        `CREATE TABLE IF NOT EXISTS "${table}" (key text PRIMARY KEY, value jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`,
      );
    } finally {
      await this.client.query('SELECT pg_advisory_unlock(hashtext($1))', [table]);
    }
  }

  async close(): Promise<void> {
    if (this.ready) await this.client.end().catch(() => {});
  }
}

/** JSON text of `v`, with bigints as decimal strings (JSON has no bigint; only then is the slower replacer used). */
function toJson(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch {
    return JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x));
  }
}
