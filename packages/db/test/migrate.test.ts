import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureDatabase, migrate } from '../src/index.ts';
import { defaultMigrationsDir } from '../src/migrate.ts';
import { dropDatabase, uniqueDatabaseName, withDatabase } from '../src/testing.ts';
import { migrateStatus } from '../scripts/prisma6.ts';

const server = process.env.DATABASE_URL!;
const created: string[] = [];

afterAll(async () => {
  await Promise.all(created.map((url) => dropDatabase(url)));
});

async function freshDatabase() {
  const url = withDatabase(server, uniqueDatabaseName());
  created.push(url);
  await ensureDatabase(url);
  return url;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

const migrationNames = readdirSync(defaultMigrationsDir, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();

describe('ensureDatabase', () => {
  it('creates a missing database and leaves an existing one alone', async () => {
    const url = withDatabase(server, uniqueDatabaseName());
    created.push(url);
    await Promise.all([ensureDatabase(url), ensureDatabase(url)]);
    await ensureDatabase(url);
    expect(await query(url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });
});

describe('migrate', () => {
  it('applies every migration once, then nothing', async () => {
    const url = await freshDatabase();
    expect(await migrate(url)).toEqual({ applied: migrationNames });
    expect(await migrate(url)).toEqual({ applied: [] });
  });

  it('records migrations in _prisma_migrations as the Prisma CLI does', async () => {
    const url = await freshDatabase();
    await migrate(url);

    const columns = await query(
      url,
      `SELECT column_name, data_type, character_maximum_length AS len, is_nullable, column_default
         FROM information_schema.columns WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position`,
    );
    expect(columns).toEqual([
      { column_name: 'id', data_type: 'character varying', len: 36, is_nullable: 'NO', column_default: null },
      { column_name: 'checksum', data_type: 'character varying', len: 64, is_nullable: 'NO', column_default: null },
      { column_name: 'finished_at', data_type: 'timestamp with time zone', len: null, is_nullable: 'YES', column_default: null },
      { column_name: 'migration_name', data_type: 'character varying', len: 255, is_nullable: 'NO', column_default: null },
      { column_name: 'logs', data_type: 'text', len: null, is_nullable: 'YES', column_default: null },
      { column_name: 'rolled_back_at', data_type: 'timestamp with time zone', len: null, is_nullable: 'YES', column_default: null },
      { column_name: 'started_at', data_type: 'timestamp with time zone', len: null, is_nullable: 'NO', column_default: 'now()' },
      { column_name: 'applied_steps_count', data_type: 'integer', len: null, is_nullable: 'NO', column_default: '0' },
    ]);

    const rows = await query<{
      id: string;
      checksum: string;
      migration_name: string;
      finished_at: Date | null;
      started_at: Date;
      rolled_back_at: Date | null;
      logs: string | null;
      applied_steps_count: number;
    }>(url, 'SELECT * FROM "_prisma_migrations" ORDER BY migration_name');
    expect(rows.map((r) => r.migration_name)).toEqual(migrationNames);
    for (const row of rows) {
      const file = readFileSync(join(defaultMigrationsDir, row.migration_name, 'migration.sql'));
      expect(row.checksum).toBe(createHash('sha256').update(file).digest('hex'));
      expect(row.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.finished_at!.getTime()).toBeGreaterThanOrEqual(row.started_at.getTime());
      expect(row).toMatchObject({ rolled_back_at: null, logs: null, applied_steps_count: 1 });
    }
  });

  it('is agreed with by the Prisma CLI', async () => {
    const url = await freshDatabase();
    await migrate(url);
    const status = await migrateStatus(url);
    expect(status.stdout + status.stderr).toContain('Database schema is up to date');
    expect(status.code).toBe(0);
  });

  it('lets concurrent runs apply each migration exactly once', async () => {
    const url = await freshDatabase();
    const results = await Promise.all([migrate(url), migrate(url), migrate(url)]);
    expect(results.flatMap((r) => r.applied).sort()).toEqual(migrationNames);
    const counts = await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM "_prisma_migrations"');
    expect(counts).toEqual([{ n: migrationNames.length }]);
  });

  it('rolls back a failing migration, records nothing for it, and keeps the ones before', async () => {
    const url = await freshDatabase();
    const dir = mkdtempSync(join(tmpdir(), 'keyflow-migrations-'));
    try {
      const write = (name: string, sql: string) => {
        mkdirSync(join(dir, name));
        writeFileSync(join(dir, name, 'migration.sql'), sql);
      };
      write('20260101000000_good', 'CREATE TABLE "Good" (id INT PRIMARY KEY);');
      write('20260102000000_bad', 'CREATE TABLE "Half" (id INT);\nSELECT no_such_function();');

      await expect(migrate(url, { migrationsDir: dir })).rejects.toThrow(/20260102000000_bad.*no_such_function/);
      const tables = await query<{ table_name: string }>(
        url,
        `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
      );
      expect(tables.map((t) => t.table_name)).toEqual(['Good', '_prisma_migrations']);
      const names = await query<{ migration_name: string }>(url, 'SELECT migration_name FROM "_prisma_migrations"');
      expect(names).toEqual([{ migration_name: '20260101000000_good' }]);

      writeFileSync(join(dir, '20260102000000_bad', 'migration.sql'), 'CREATE TABLE "Half" (id INT);');
      expect(await migrate(url, { migrationsDir: dir })).toEqual({ applied: ['20260102000000_bad'] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to go on past a migration that the Prisma CLI recorded as failed', async () => {
    const url = await freshDatabase();
    await migrate(url);
    await query(
      url,
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, logs)
       VALUES ('00000000-0000-4000-8000-000000000000', 'x', '20990101000000_broken', 'boom')`,
    );
    await expect(migrate(url)).rejects.toThrow(/20990101000000_broken.*prisma migrate resolve/s);
  });
});
