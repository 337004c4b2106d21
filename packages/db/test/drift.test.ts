// Fails when prisma/schema.prisma and prisma/migrations disagree: the database our migrations
// build must have the structure of the one Prisma builds from the schema.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createEmptyDatabase, createMigratedDatabase, dropDatabase } from '../src/testing.ts';
import { defaultSchemaPath, pendingSql, schemaSql } from '../scripts/prisma6.ts';
import { snapshotSchema } from './schemaSnapshot.ts';

const server = process.env.DATABASE_URL!;
const created: string[] = [];
const HOW_TO_FIX =
  'prisma/schema.prisma changed without a migration (or a migration does not match it). ' +
  'Draft one with `pnpm --filter @keyflow/db migration:draft <name>`, review it, and commit it.';

afterAll(async () => {
  await Promise.all(created.map((url) => dropDatabase(url)));
});

async function migratedDatabase() {
  const url = await createMigratedDatabase(server);
  created.push(url);
  return url;
}

async function databaseFromSchema(schemaPath = defaultSchemaPath) {
  const sql = await schemaSql({ databaseUrl: server, schemaPath });
  const url = await createEmptyDatabase(server);
  created.push(url);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
  return url;
}

describe('migrations and schema.prisma', () => {
  it('build the same database structure', async () => {
    const [migrated, generated] = await Promise.all([migratedDatabase(), databaseFromSchema()]);
    const [a, b] = await Promise.all([snapshotSchema(migrated), snapshotSchema(generated)]);
    expect(a.tables.length).toBeGreaterThan(0);
    expect(a, HOW_TO_FIX).toEqual(b);
  });

  it('leave nothing for Prisma to migrate', async () => {
    expect(await pendingSql({ databaseUrl: server }), HOW_TO_FIX).toBe('');
  });

  it('are told apart when the schema changes without a migration', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyflow-drift-'));
    try {
      const changed = join(dir, 'schema.prisma');
      const schema = readFileSync(defaultSchemaPath, 'utf8');
      writeFileSync(changed, schema.replace(/^model Job \{$/m, 'model Job {\n  driftProbe Int?'));

      const [migrated, generated] = await Promise.all([migratedDatabase(), databaseFromSchema(changed)]);
      const [a, b] = await Promise.all([snapshotSchema(migrated), snapshotSchema(generated)]);
      expect(b.columns['Job.driftProbe']).toEqual({ type: 'integer', nullable: true, default: null });
      expect(a).not.toEqual(b);
      expect(await pendingSql({ databaseUrl: server, schemaPath: changed })).toContain('"driftProbe"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
