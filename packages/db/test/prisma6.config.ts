// Prisma 6.19's JavaScript schema engine runs offline (Prisma 7's CLI needs a native engine).
// Used to draft migrations and by the drift test; see scripts/prisma6.ts.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { PrismaPg } from 'prisma6-adapter-pg';

const url = new URL(process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres');
const connection = (database: string) => ({
  host: url.hostname,
  port: Number(url.port || 5432),
  user: decodeURIComponent(url.username) || undefined,
  password: decodeURIComponent(url.password) || undefined,
  database,
  // The CLI never closes the adapter's pool; without this its idle clients hold the process open.
  allowExitOnIdle: true,
});

// Two gaps between this adapter and Prisma 6.19's schema describer, which reads pg_catalog:
// - the adapter cannot type columns of Postgres's `name` and `"char"` types ("Column type 'name'
//   could not be deserialized"): report them as text, which is what they hold;
// - Postgres 18 lists NOT NULL constraints in pg_constraint (contype 'n'), which the describer
//   does not know (it panics); it reads nullability from the columns anyway, so drop those rows.
const AS_TEXT: Record<number, number> = { 18: 25, 19: 25, 1003: 1009 };
type Result = { fields?: { name: string; dataTypeID: number }[]; rows?: unknown[][] };
function bridgeCatalogReads(adapter: object) {
  const queryable = Object.getPrototypeOf(Object.getPrototypeOf(adapter)) as {
    performIO: (...args: unknown[]) => Promise<Result>;
    bridged?: boolean;
  };
  if (queryable.bridged) return;
  const performIO = queryable.performIO;
  queryable.performIO = async function (this: unknown, ...args: unknown[]) {
    const result = await performIO.apply(this, args);
    const fields = result.fields ?? [];
    for (const field of fields) field.dataTypeID = AS_TEXT[field.dataTypeID] ?? field.dataTypeID;
    const constraintType = fields.findIndex((f) => f.name === 'constraint_type');
    if (constraintType >= 0 && result.rows) result.rows = result.rows.filter((row) => row[constraintType] !== 'n');
    return result;
  };
  queryable.bridged = true;
}

async function admin(sql: string) {
  const client = new pg.Client(connection('postgres'));
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export default {
  experimental: { adapter: true },
  engine: 'js',
  schema: '../../../prisma/schema.prisma',
  migrations: { path: '../../../prisma/migrations' },
  adapter: async () => {
    const main = new PrismaPg(connection(decodeURIComponent(url.pathname.slice(1)) || 'postgres'));
    return {
      provider: main.provider,
      adapterName: main.adapterName,
      async connect() {
        const adapter = await main.connect();
        bridgeCatalogReads(adapter);
        return adapter;
      },
      // The adapter's own shadow database is never dropped (it drops before disconnecting).
      async connectToShadowDb() {
        const name = `prisma_shadow_${randomUUID().replace(/-/g, '')}`;
        await admin(`CREATE DATABASE "${name}"`);
        const adapter = await new PrismaPg(connection(name)).connect();
        bridgeCatalogReads(adapter);
        const dispose = adapter.dispose.bind(adapter);
        adapter.dispose = async () => {
          await dispose();
          await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        };
        return adapter;
      },
    };
  },
};
