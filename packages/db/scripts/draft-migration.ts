// Drafts the next migration: the SQL that Prisma generates to bring a database migrated with
// prisma/migrations to prisma/schema.prisma. Review it, then commit it with the schema change.
// Usage: pnpm --filter @keyflow/db migration:draft <name>
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { defaultMigrationsDir, pendingSql } from './prisma6.ts';

const name = process.argv[2];
if (!name || !/^[a-z0-9_]+$/.test(name)) {
  console.error('Usage: migration:draft <name>   (lower-case letters, digits and _ only)');
  process.exit(1);
}
const databaseUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

const sql = await pendingSql({ databaseUrl });
if (!sql.trim()) {
  console.log('prisma/schema.prisma and prisma/migrations agree: nothing to draft.');
  process.exit(0);
}
const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
const dir = join(defaultMigrationsDir, `${stamp}_${name}`);
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'migration.sql'), sql.endsWith('\n') ? sql : `${sql}\n`);
console.log(`Wrote ${relative(process.cwd(), join(dir, 'migration.sql'))}:\n\n${sql}`);
