// The restricted role pipelines' Postgres sinks write through: a user's pipeline names the tables, so the role it
// writes with must reach no table of Keyflow's own (jobs, checkpoints, users, sessions, API keys).
import pg from 'pg';

/** The schema sink tables (and the sinks' own bookkeeping tables) live in. */
export const SINK_SCHEMA = 'keyflow_sinks';
/** The role `ensureSinkRole` creates unless told another name. */
export const DEFAULT_SINK_ROLE = 'keyflow_sink';

/** The sinks' bookkeeping tables (see PostgresSink): moved into the sink schema when an older setup left them in public. */
const BOOKKEEPING_TABLES = ['keyflow_sink_pending', 'keyflow_sink_fence'];

/**
 * The URL Postgres sinks write through: KEYFLOW_SINK_DATABASE_URL, else DATABASE_URL, in which case `warn` is told
 * (once per call; each process calls it once at start) that sinks run with the control plane's credentials.
 */
export function sinkDatabaseUrlOf(env: { DATABASE_URL: string; KEYFLOW_SINK_DATABASE_URL?: string }, warn: (message: string) => void): string {
  if (env.KEYFLOW_SINK_DATABASE_URL) return env.KEYFLOW_SINK_DATABASE_URL;
  warn(
    "KEYFLOW_SINK_DATABASE_URL is not set: Postgres sinks write with DATABASE_URL's credentials, so a pipeline can reach " +
      "Keyflow's own tables. Give sinks a restricted role of their own (npm run up and docker compose do; see the README).",
  );
  return env.DATABASE_URL;
}

export interface SinkRoleOptions {
  /** The role's name; `keyflow_sink` unless told. */
  role?: string;
  password: string;
  /** The schema it owns and writes into; `keyflow_sinks` unless told. */
  schema?: string;
}

/**
 * Creates (or brings back in line) a LOGIN role for sinks on the database of `adminUrl`, and returns the URL sinks
 * connect with (`adminUrl` with the role's name and password). The role owns `schema`, which is its search_path in
 * this database, so the unqualified tables a sink creates land there; it has no privilege on the public schema,
 * where Keyflow's Prisma tables are, and is a member of no other role. Takes the public schema's CREATE and USAGE
 * from PUBLIC (Postgres 15 takes CREATE itself), keeping both for the admin and the database's owner.
 * Idempotent; `adminUrl` needs a superuser or a role with CREATEROLE that owns the database.
 */
export async function ensureSinkRole(adminUrl: string, options: SinkRoleOptions): Promise<string> {
  const role = options.role ?? DEFAULT_SINK_ROLE;
  const schema = options.schema ?? SINK_SCHEMA;
  for (const name of [role, schema]) if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`'${name}' is not a plain lower-case SQL identifier`);
  if (schema === 'public') throw new Error('sinks need a schema of their own, not public');

  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    // One transaction: no half-made role. Concurrent calls on one database wait for each other; on several (the
    // role is the cluster's) they may still collide on the role's catalog rows, and then go again.
    await retryConflicts(async () => {
      await client.query('BEGIN');
      try {
        await client.query(`SELECT pg_advisory_xact_lock(hashtext('keyflow_sink_role'))`);
        await setUp(client, role, schema, options.password);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
    });
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.username = encodeURIComponent(role);
  url.password = encodeURIComponent(options.password);
  return url.toString();
}

/** The steps of ensureSinkRole, in its transaction. */
async function setUp(client: pg.Client, role: string, schema: string, password: string): Promise<void> {
  const { rows } = await client.query<{ me: string; db: string; owner: string; exists: boolean }>(
    `SELECT current_user AS me, current_database() AS db, pg_get_userbyid(datdba) AS owner,
            EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS exists
       FROM pg_database WHERE datname = current_database()`,
    [role],
  );
  const { me, db, owner, exists } = rows[0]!;
  if (role === me || role === owner) throw new Error(`the sink role must not be the admin or the database's owner ('${role}')`);
  const r = ident(role);
  const s = ident(schema);

  const attributes = `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT PASSWORD ${client.escapeLiteral(password)}`;
  await client.query(`${exists ? 'ALTER' : 'CREATE'} ROLE ${r} ${attributes}`);
  // A role that existed before may have been granted others' privileges (pg_read_all_data, say).
  const memberships = await client.query<{ granted: string }>(
    'SELECT roleid::regrole::text AS granted FROM pg_auth_members WHERE member = $1::regrole',
    [role],
  );
  for (const m of memberships.rows) await client.query(`REVOKE ${m.granted} FROM ${r}`);

  await client.query(`GRANT CONNECT ON DATABASE ${ident(db)} TO ${r}`);
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${s} AUTHORIZATION ${r}`);
  await client.query(`ALTER SCHEMA ${s} OWNER TO ${r}`);
  await client.query(`ALTER ROLE ${r} IN DATABASE ${ident(db)} SET search_path = ${s}`);
  for (const table of BOOKKEEPING_TABLES) await moveToSchema(client, table, schema, role);

  // Keyflow's own tables are in public: the sink role may neither use that schema nor create anything in it.
  for (const keeper of new Set([me, owner])) await client.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${ident(keeper)}`);
  await client.query(`REVOKE ALL ON SCHEMA public FROM PUBLIC, ${r}`);
  await client.query(`REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC, ${r}`);
  await client.query(`REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC, ${r}`);

  const leaks = await publicPrivileges(client, role);
  if (leaks.length) throw new Error(`the sink role '${role}' would still have privileges in the public schema: ${leaks.join(', ')}`);
}

/** Moves a bookkeeping table an older setup created in public into the sink schema, owned by the role (pending output survives). */
async function moveToSchema(client: pg.Client, table: string, schema: string, role: string): Promise<void> {
  const { rows } = await client.query<{ old: boolean; new: boolean }>(
    `SELECT to_regclass(format('public.%I', $1::text)) IS NOT NULL AS old, to_regclass(format('%I.%I', $2::text, $1::text)) IS NOT NULL AS new`,
    [table, schema],
  );
  if (!rows[0]!.old || rows[0]!.new) return;
  await client.query(`ALTER TABLE public.${ident(table)} SET SCHEMA ${ident(schema)}`);
  await client.query(`ALTER TABLE ${ident(schema)}.${ident(table)} OWNER TO ${ident(role)}`);
}

/** What `role` may still do in the public schema (nothing, once `ensureSinkRole` is done). */
async function publicPrivileges(client: pg.Client, role: string): Promise<string[]> {
  const { rows } = await client.query<{ what: string }>(
    `SELECT 'schema ' || p AS what FROM unnest(ARRAY['USAGE', 'CREATE']) p WHERE has_schema_privilege($1, 'public', p)
     UNION ALL
     SELECT format('table %I', c.relname) FROM pg_class c
      WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND has_table_privilege($1, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')`,
    [role],
  );
  return rows.map((r) => r.what);
}

/** Runs `fn` again when another session changed the same catalog rows at once (the role, made in two databases). */
async function retryConflicts<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      const e = error as { code?: string; message?: string };
      const conflict = ['23505', '42710', '40001', '40P01'].includes(e.code ?? '') || (e.code === 'XX000' && /concurrently/.test(e.message ?? ''));
      if (attempt >= 5 || !conflict) throw error;
      await new Promise((r) => setTimeout(r, 20 * attempt));
    }
  }
}

function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
