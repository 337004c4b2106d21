// The structure of a database's `public` schema, read from the catalogs, in a form two databases
// can be compared by: names and definitions, sorted, free of positions and OIDs.
import pg from 'pg';

export interface SchemaSnapshot {
  tables: string[];
  columns: Record<string, { type: string; nullable: boolean; default: string | null }>;
  constraints: Record<string, string>;
  indexes: Record<string, string>;
  enums: Record<string, string[]>;
}

export async function snapshotSchema(url: string, ignoreTables = ['_prisma_migrations']): Promise<SchemaSnapshot> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const ignored = (table: string) => ignoreTables.includes(table);

    const tables = await client.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables
        WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
    );

    // Column order is left out on purpose: ALTER TABLE ADD COLUMN appends, the schema need not.
    const columns = await client.query<{
      table_name: string;
      column_name: string;
      type: string;
      is_nullable: string;
      column_default: string | null;
    }>(
      `SELECT c.table_name, c.column_name, c.is_nullable, c.column_default,
              format_type(a.atttypid, a.atttypmod) AS type
         FROM information_schema.columns c
         JOIN pg_attribute a
           ON a.attrelid = format('%I.%I', c.table_schema, c.table_name)::regclass
          AND a.attname = c.column_name
        WHERE c.table_schema = 'public'`,
    );

    const constraints = await client.query<{ table: string; name: string; def: string }>(
      `SELECT t.relname AS table, c.conname AS name, pg_get_constraintdef(c.oid) AS def
         FROM pg_constraint c
         JOIN pg_class t ON t.oid = c.conrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = 'public'`,
    );

    const indexes = await client.query<{ tablename: string; indexname: string; indexdef: string }>(
      `SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'`,
    );

    // Sorted: ADD VALUE appends, and Prisma treats enum values as a set.
    const enums = await client.query<{ name: string; labels: string[] }>(
      `SELECT t.typname AS name, array_agg(e.enumlabel::text ORDER BY e.enumlabel) AS labels
         FROM pg_type t
         JOIN pg_enum e ON e.enumtypid = t.oid
         JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public'
        GROUP BY t.typname`,
    );

    return {
      tables: tables.rows
        .map((r) => r.table_name)
        .filter((t) => !ignored(t))
        .sort(),
      columns: sortedRecord(
        columns.rows
          .filter((r) => !ignored(r.table_name))
          .map((r) => [`${r.table_name}.${r.column_name}`, { type: r.type, nullable: r.is_nullable === 'YES', default: r.column_default }]),
      ),
      constraints: sortedRecord(constraints.rows.filter((r) => !ignored(r.table)).map((r) => [`${r.table}.${r.name}`, r.def])),
      indexes: sortedRecord(indexes.rows.filter((r) => !ignored(r.tablename)).map((r) => [`${r.tablename}.${r.indexname}`, r.indexdef])),
      enums: sortedRecord(enums.rows.map((r) => [r.name, r.labels])),
    };
  } finally {
    await client.end();
  }
}

function sortedRecord<T>(entries: [string, T][]): Record<string, T> {
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
