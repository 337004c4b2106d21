// Runs Prisma 6.19's CLI with its JavaScript schema engine, offline, to get the SQL that Prisma
// generates for prisma/schema.prisma. Prisma 7's CLI would need a native engine download.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(packageDir, 'package.json'));

export const defaultSchemaPath = resolve(packageDir, '../../prisma/schema.prisma');
export const defaultMigrationsDir = resolve(packageDir, '../../prisma/migrations');
const configPath = join(packageDir, 'test', 'prisma6.config.ts');

export interface Prisma6Options {
  /** A database on the Postgres server to use; shadow databases are made and dropped there. */
  databaseUrl: string;
  schemaPath?: string;
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The SQL that creates the schema from nothing (`migrate diff --from-empty`). */
export async function schemaSql(options: Prisma6Options): Promise<string> {
  const run = await diff(['--from-empty'], options);
  if (run.code !== 0 && run.code !== 2) throw new Error(`prisma migrate diff failed:\n${run.stderr}`);
  return run.stdout;
}

/** The SQL that brings a database migrated with `migrationsDir` to the schema; '' when none. */
export async function pendingSql(options: Prisma6Options & { migrationsDir?: string }): Promise<string> {
  const run = await diff(['--from-migrations', options.migrationsDir ?? defaultMigrationsDir], options);
  if (run.code === 0) return '';
  if (run.code !== 2) throw new Error(`prisma migrate diff failed:\n${run.stderr}`);
  return run.stdout;
}

/** `prisma migrate status` for the database at `databaseUrl` against prisma/migrations. */
export function migrateStatus(databaseUrl: string): Promise<Run> {
  return withSchemaFile(defaultSchemaPath, (schema) => prisma6(['migrate', 'status', '--schema', schema], databaseUrl));
}

function diff(from: string[], options: Prisma6Options): Promise<Run> {
  return withSchemaFile(options.schemaPath ?? defaultSchemaPath, (schema) =>
    prisma6(['migrate', 'diff', ...from, '--to-schema-datamodel', schema, '--script', '--exit-code'], options.databaseUrl),
  );
}

// Prisma 6 requires a `url` in the datasource block, which Prisma 7 forbids (it lives in the
// config): hand Prisma 6 a copy of the schema that has one.
async function withSchemaFile<T>(schemaPath: string, use: (path: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'keyflow-prisma6-'));
  try {
    const schema = join(dir, 'schema.prisma');
    writeFileSync(schema, withDatasourceUrl(readFileSync(schemaPath, 'utf8')));
    return await use(schema);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the Prisma 6.19 CLI with our JS-engine config; never throws on a non-zero exit. */
export function prisma6(args: string[], databaseUrl: string): Promise<Run> {
  const cli = join(dirname(require.resolve('prisma6/package.json')), 'build', 'index.js');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    PRISMA_HIDE_UPDATE_MESSAGE: '1',
    CHECKPOINT_DISABLE: '1',
  };
  // The CLI checks for native engines it does not use with engine: 'js'; any file passes.
  const engines = prisma6Engines();
  if (!engines.some((f) => f.startsWith('libquery_engine'))) env.PRISMA_QUERY_ENGINE_LIBRARY ??= process.execPath;
  if (!engines.some((f) => f.startsWith('schema-engine'))) env.PRISMA_SCHEMA_ENGINE_BINARY ??= process.execPath;
  return new Promise((done) => {
    execFile(
      process.execPath,
      [cli, ...args, '--config', configPath],
      { cwd: packageDir, env, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        done({ code, stdout, stderr: stderr || (error && !stdout ? String(error) : '') });
      },
    );
  });
}

function prisma6Engines(): string[] {
  try {
    const prismaRequire = createRequire(require.resolve('prisma6/package.json'));
    const dir = dirname(prismaRequire.resolve('@prisma/engines/package.json'));
    return existsSync(dir) ? readdirSync(dir) : [];
  } catch {
    return [];
  }
}

function withDatasourceUrl(schema: string): string {
  if (/datasource\s+\w+\s*\{[^}]*\burl\s*=/.test(schema)) return schema;
  return schema.replace(/(datasource\s+\w+\s*\{)/, '$1\n  url = env("DATABASE_URL")');
}
