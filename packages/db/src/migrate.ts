// Applies prisma/migrations/<timestamp>_<name>/migration.sql in name order and records each one
// in `_prisma_migrations` exactly as `prisma migrate deploy` does, so the Prisma CLI agrees with
// what this runner did (the CLI itself cannot apply migrations offline).
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const defaultMigrationsDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../../prisma/migrations');

// The key Prisma Migrate locks on: the CLI and this runner exclude each other.
const PRISMA_MIGRATE_LOCK = 72707369;

// The table as Prisma's schema engine creates it on Postgres.
const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export interface MigrateOptions {
  /** Folder holding `<timestamp>_<name>/migration.sql`; defaults to the repo's prisma/migrations. */
  migrationsDir?: string;
  log?: (line: string) => void;
}

export interface MigrateResult {
  /** Names of the migrations this call applied, in order. */
  applied: string[];
}

interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

/** Creates the database named in `url` if it does not exist, connecting to the `postgres` database. */
export async function ensureDatabase(url: string): Promise<void> {
  const name = databaseName(url);
  const admin = new pg.Client({ connectionString: withDatabase(url, 'postgres') });
  await admin.connect();
  try {
    const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return;
    try {
      await admin.query(`CREATE DATABASE ${quoteIdent(name)}`);
    } catch (error) {
      // Another process created it first: duplicate_database, or unique_violation on pg_database.
      const code = (error as { code?: string }).code;
      if (code !== '42P04' && code !== '23505') throw error;
    }
  } finally {
    await admin.end();
  }
}

/** Applies every migration not yet recorded as finished; safe to run from several processes at once. */
export async function migrate(url: string, options: MigrateOptions = {}): Promise<MigrateResult> {
  const migrations = readMigrations(options.migrationsDir ?? defaultMigrationsDir);
  const log = options.log ?? (() => {});
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK]);
    await client.query(CREATE_MIGRATIONS_TABLE);
    const rows = await client.query<{
      migration_name: string;
      checksum: string;
      finished_at: Date | null;
      rolled_back_at: Date | null;
    }>('SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations"');

    const failed = rows.rows.filter((r) => r.finished_at === null && r.rolled_back_at === null);
    if (failed.length > 0) {
      throw new Error(
        `Migration ${failed.map((r) => r.migration_name).join(', ')} failed earlier and is recorded ` +
          'as unfinished in _prisma_migrations. Fix the database, then mark it with ' +
          '`prisma migrate resolve --applied|--rolled-back <name>` before migrating again.',
      );
    }
    const finished = new Map(rows.rows.filter((r) => r.finished_at !== null).map((r) => [r.migration_name, r.checksum]));

    const applied: string[] = [];
    for (const migration of migrations) {
      const checksum = finished.get(migration.name);
      if (checksum !== undefined) {
        if (checksum !== migration.checksum) {
          log(`warning: migration ${migration.name} was edited after it was applied`);
        }
        continue;
      }
      await applyMigration(client, migration);
      applied.push(migration.name);
      log(`applied migration ${migration.name}`);
    }
    return { applied };
  } finally {
    // Closing the session also releases the advisory lock.
    await client.end();
  }
}

async function applyMigration(client: pg.Client, migration: Migration): Promise<void> {
  const id = randomUUID();
  await client.query('BEGIN');
  try {
    await client.query(
      'INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) ' + 'VALUES ($1, $2, $3, now(), 0)',
      [id, migration.checksum, migration.name],
    );
    await client.query(migration.sql);
    await client.query('UPDATE "_prisma_migrations" SET applied_steps_count = 1, finished_at = clock_timestamp() WHERE id = $1', [id]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw new Error(`Migration ${migration.name} failed and was rolled back: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

function readMigrations(dir: string): Migration[] {
  if (!existsSync(dir)) throw new Error(`No migrations folder at ${dir}`);
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const file = join(dir, name, 'migration.sql');
      if (!existsSync(file)) throw new Error(`Migration ${name} has no migration.sql`);
      const bytes = readFileSync(file);
      return {
        name,
        sql: bytes.toString('utf8'),
        checksum: createHash('sha256').update(bytes).digest('hex'),
      };
    });
}

function databaseName(url: string): string {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  if (!name) throw new Error(`The database URL names no database: ${url}`);
  return name;
}

/** `url` with its database replaced by `database`. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
