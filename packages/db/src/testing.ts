// Throwaway databases for tests: each run or test gets its own, created and migrated here.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { ensureDatabase, migrate, withDatabase, type MigrateOptions } from './migrate.ts';
import { ensureSinkRole } from './sinkRole.ts';

export { withDatabase };

/** A database name unique to this call; the prefix lets stale ones be found and dropped. */
export function uniqueDatabaseName(prefix = 'keyflow_test'): string {
  const stamp = Math.floor(Date.now() / 1000).toString(36);
  return `${prefix}_${stamp}_${randomBytes(4).toString('hex')}`;
}

/** Creates a database on the server of `serverUrl` and applies the migrations; returns its URL. */
export async function createMigratedDatabase(serverUrl: string, name = uniqueDatabaseName(), options?: MigrateOptions): Promise<string> {
  const url = withDatabase(serverUrl, name);
  await ensureDatabase(url);
  await migrate(url, options);
  return url;
}

/** Creates an empty database on the server of `serverUrl`; returns its URL. */
export async function createEmptyDatabase(serverUrl: string, name = uniqueDatabaseName()): Promise<string> {
  const url = withDatabase(serverUrl, name);
  await ensureDatabase(url);
  return url;
}

/** The sink role of a test database: named after it, so that it goes with it. */
function sinkRoleOf(database: string): string {
  return `${database}_sink`;
}

/**
 * Creates the restricted sink role of the database of `url` (see ensureSinkRole), with a random password; returns
 * the URL sinks write through (KEYFLOW_SINK_DATABASE_URL). `dropDatabase` drops it with the database.
 */
export function createSinkRole(url: string): Promise<string> {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  return ensureSinkRole(url, { role: sinkRoleOf(name), password: randomBytes(16).toString('hex') });
}

/** Drops the database of `url`, disconnecting anyone still on it, and its sink role if it has one. */
export async function dropDatabase(url: string): Promise<void> {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  const admin = new pg.Client({ connectionString: withDatabase(url, 'postgres') });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
    await admin.query(`DROP ROLE IF EXISTS "${sinkRoleOf(name).replace(/"/g, '""')}"`);
  } finally {
    await admin.end();
  }
}

/** Drops databases made by `uniqueDatabaseName(prefix)` more than `maxAgeMs` ago (left by killed runs). */
export async function dropStaleDatabases(serverUrl: string, prefix = 'keyflow_test', maxAgeMs = 6 * 3600_000) {
  const admin = new pg.Client({ connectionString: withDatabase(serverUrl, 'postgres') });
  await admin.connect();
  let names: string[];
  try {
    const rows = await admin.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE $1 || '\\_%'", [prefix]);
    names = rows.rows.map((r) => r.datname);
  } finally {
    await admin.end();
  }
  const pattern = new RegExp(`^${prefix}_([0-9a-z]+)_[0-9a-f]{8}$`);
  for (const name of names) {
    const stamp = pattern.exec(name)?.[1];
    if (stamp && Date.now() - parseInt(stamp, 36) * 1000 > maxAgeMs) {
      await dropDatabase(withDatabase(serverUrl, name));
    }
  }
}
