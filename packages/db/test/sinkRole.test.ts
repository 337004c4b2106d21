// The sink role against real migrated databases: it reaches its own schema and nothing of Keyflow's.
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureSinkRole, SINK_SCHEMA, sinkDatabaseUrlOf } from '../src/index.ts';
import { createMigratedDatabase, createSinkRole, dropDatabase, uniqueDatabaseName, withDatabase } from '../src/testing.ts';

const adminUrl = process.env.DATABASE_URL!;
const sinkUrl = process.env.KEYFLOW_SINK_DATABASE_URL!;
const created: string[] = [];

afterAll(async () => {
  await Promise.all(created.map((url) => dropDatabase(url)));
});

async function freshDatabase(): Promise<string> {
  const url = await createMigratedDatabase(adminUrl, uniqueDatabaseName());
  created.push(url);
  return url;
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The SQLSTATE `sql` fails with, or 'ok'. */
async function outcome(c: pg.Client, sql: string): Promise<string> {
  await c.query('SAVEPOINT probe');
  try {
    await c.query(sql);
    await c.query('RELEASE SAVEPOINT probe');
    return 'ok';
  } catch (error) {
    await c.query('ROLLBACK TO SAVEPOINT probe');
    return (error as { code?: string }).code ?? String(error);
  }
}

const PERMISSION_DENIED = '42501';

describe("the test run's sink role (KEYFLOW_SINK_DATABASE_URL)", () => {
  it('is set up by the global setup on the run’s database, as a role of its own', () => {
    expect(new URL(sinkUrl).pathname).toBe(new URL(adminUrl).pathname);
    expect(new URL(sinkUrl).username).not.toBe(new URL(adminUrl).username);
  });

  it("cannot read or write Keyflow's tables, nor create anything in public", async () => {
    const keyflowTables = await withClient(adminUrl, async (c) =>
      (await c.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).rows.map((r) => r.t),
    );
    expect(keyflowTables).toEqual(expect.arrayContaining(['Job', 'Checkpoint', 'user', 'session', 'apikey', 'AuditEvent', '_prisma_migrations']));

    await withClient(sinkUrl, async (c) => {
      await c.query('BEGIN');
      expect(await outcome(c, 'SELECT * FROM public."Job"')).toBe(PERMISSION_DENIED);
      expect(await outcome(c, `INSERT INTO public."user" (id, name, email) VALUES ('x', 'x', 'x@example.com')`)).toBe(PERMISSION_DENIED);
      expect(await outcome(c, 'CREATE TABLE public.squat (key text)')).toBe(PERMISSION_DENIED);
      expect(await outcome(c, 'UPDATE public."apikey" SET "enabled" = true')).toBe(PERMISSION_DENIED);
      expect(await outcome(c, 'DELETE FROM public."_prisma_migrations"')).toBe(PERMISSION_DENIED);
      // Every table the migrations made, whatever comes later.
      for (const t of keyflowTables) expect([t, await outcome(c, `SELECT 1 FROM public."${t}" LIMIT 1`)]).toEqual([t, PERMISSION_DENIED]);
      // Nor can it become someone else.
      expect(await outcome(c, `SET ROLE "${new URL(adminUrl).username || 'postgres'}"`)).toBe(PERMISSION_DENIED);
      await c.query('ROLLBACK');
    });
  });

  it('creates unqualified tables in its own schema, and can use them', async () => {
    await withClient(sinkUrl, async (c) => {
      expect((await c.query('SELECT current_schema() AS s')).rows[0].s).toBe(SINK_SCHEMA);
      await c.query('BEGIN');
      await c.query('CREATE TABLE probe_counts (key text PRIMARY KEY, value jsonb NOT NULL)');
      await c.query(`INSERT INTO probe_counts VALUES ('a', '1')`);
      expect((await c.query('SELECT schemaname FROM pg_tables WHERE tablename = $1', ['probe_counts'])).rows).toEqual([{ schemaname: SINK_SCHEMA }]);
      await c.query('ROLLBACK');
    });
  });
});

describe('ensureSinkRole', () => {
  it('is idempotent, also when called at once, and takes the latest password', async () => {
    const db = await freshDatabase();
    const role = `${new URL(db).pathname.slice(1)}_sink`;
    await Promise.all([1, 2, 3].map((i) => ensureSinkRole(db, { role, password: `first-${i}` })));
    const url = await ensureSinkRole(db, { role, password: 'second' });
    expect(new URL(url).password).toBe('second');
    await withClient(url, async (c) => {
      expect((await c.query('SELECT current_user AS u, current_schema() AS s')).rows[0]).toEqual({ u: role, s: SINK_SCHEMA });
    });
  });

  it('sets one role up on two databases at once', async () => {
    const [a, b] = await Promise.all([freshDatabase(), freshDatabase()]);
    const role = `${new URL(a!).pathname.slice(1)}_sink`;
    try {
      const urls = await Promise.all([a!, b!].map((db) => ensureSinkRole(db, { role, password: 'shared' })));
      for (const url of urls) await withClient(url, async (c) => expect((await c.query('SELECT current_schema() AS s')).rows[0].s).toBe(SINK_SCHEMA));
    } finally {
      // The role owns a schema in both: the one it is not named after goes first.
      await dropDatabase(b!);
      created.splice(created.indexOf(b!), 1);
    }
  });

  it('brings a role that existed with more privileges back in line', async () => {
    const db = await freshDatabase();
    const role = `${new URL(db).pathname.slice(1)}_sink`;
    await withClient(db, async (c) => {
      await c.query(`CREATE ROLE "${role}" LOGIN CREATEDB`);
      await c.query(`GRANT pg_read_all_data TO "${role}"`);
      await c.query(`GRANT ALL ON SCHEMA public TO "${role}"`);
      await c.query(`GRANT SELECT ON "Job" TO PUBLIC`);
    });
    const url = await ensureSinkRole(db, { role, password: 'pw' });
    await withClient(db, async (c) => {
      const { rows } = await c.query(
        'SELECT rolcreatedb, rolsuper, (SELECT count(*)::int FROM pg_auth_members WHERE member = r.oid) AS memberships FROM pg_roles r WHERE rolname = $1',
        [role],
      );
      expect(rows).toEqual([{ rolcreatedb: false, rolsuper: false, memberships: 0 }]);
    });
    await withClient(url, async (c) => {
      await c.query('BEGIN');
      expect(await outcome(c, 'SELECT * FROM public."Job"')).toBe(PERMISSION_DENIED);
      await c.query('ROLLBACK');
    });
  });

  it("moves the sinks' bookkeeping tables an older setup left in public into its schema, rows and all", async () => {
    const db = await freshDatabase();
    await withClient(db, async (c) => {
      await c.query('CREATE TABLE keyflow_sink_fence (job_id text, sink text, attempt int NOT NULL, PRIMARY KEY (job_id, sink))');
      await c.query(`INSERT INTO keyflow_sink_fence VALUES ('j', 's', 3)`);
    });
    const url = await createSinkRole(db);
    await withClient(url, async (c) => {
      expect((await c.query('SELECT attempt FROM keyflow_sink_fence')).rows).toEqual([{ attempt: 3 }]);
      await c.query(`UPDATE keyflow_sink_fence SET attempt = 4`);
    });
  });

  it('refuses to restrict the admin itself', async () => {
    const me = await withClient(adminUrl, async (c) => (await c.query('SELECT current_user AS u')).rows[0].u as string);
    await expect(ensureSinkRole(withDatabase(adminUrl, new URL(adminUrl).pathname.slice(1)), { role: me, password: 'x' })).rejects.toThrow(
      /must not be the admin/,
    );
  });
});

describe('sinkDatabaseUrlOf', () => {
  it('falls back to DATABASE_URL with a warning that says what it means', () => {
    const warnings: string[] = [];
    const env = { DATABASE_URL: 'postgresql://keyflow@db/keyflow' };
    expect(sinkDatabaseUrlOf({ ...env, KEYFLOW_SINK_DATABASE_URL: 'postgresql://keyflow_sink:pw@db/keyflow' }, (w) => warnings.push(w))).toBe(
      'postgresql://keyflow_sink:pw@db/keyflow',
    );
    expect(warnings).toEqual([]);
    expect(sinkDatabaseUrlOf(env, (w) => warnings.push(w))).toBe(env.DATABASE_URL);
    expect(warnings).toEqual([expect.stringMatching(/KEYFLOW_SINK_DATABASE_URL is not set: .*credentials.*Keyflow's own tables/)]);
  });
});
