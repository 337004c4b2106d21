// `npm run db:migrate`: creates the database at DATABASE_URL if needed and applies pending migrations.
import { ensureDatabase, migrate } from '@keyflow/db';

const url = process.env.DATABASE_URL;
if (!url) {
  console.error('Set DATABASE_URL to the database to migrate, e.g. postgresql://postgres@127.0.0.1:5432/keyflow');
  process.exit(1);
}
await ensureDatabase(url);
const { applied } = await migrate(url, { log: (line) => console.log(line) });
if (applied.length === 0) console.log('The database is up to date.');
