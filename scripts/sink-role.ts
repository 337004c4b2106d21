// Creates (or brings back in line) the restricted role Postgres sinks write through, on the database of
// DATABASE_URL (see ensureSinkRole). Its name and password are KEYFLOW_SINK_DATABASE_URL's when that is set (as
// docker compose sets it); else the role is keyflow_sink with a new random password. `--print-url` prints the URL
// sinks connect with (KEYFLOW_SINK_DATABASE_URL), password included, for `npm run up` to pass on.
import { randomBytes } from 'node:crypto';
import { DEFAULT_SINK_ROLE, ensureSinkRole, SINK_SCHEMA } from '@keyflow/db';

const admin = process.env.DATABASE_URL;
if (!admin) {
  console.error('Set DATABASE_URL to the database whose sinks get the role, as a user that may create roles');
  process.exit(1);
}
const given = process.env.KEYFLOW_SINK_DATABASE_URL ? new URL(process.env.KEYFLOW_SINK_DATABASE_URL) : undefined;
if (given && (!given.username || !given.password)) {
  console.error('KEYFLOW_SINK_DATABASE_URL must name the sink role and its password (postgresql://role:password@host/db)');
  process.exit(1);
}
if (given && given.pathname !== new URL(admin).pathname) {
  console.error(
    `KEYFLOW_SINK_DATABASE_URL names database ${given.pathname.slice(1)}, DATABASE_URL ${new URL(admin).pathname.slice(1)}: they must be one`,
  );
  process.exit(1);
}
const role = given ? decodeURIComponent(given.username) : DEFAULT_SINK_ROLE;
const password = given ? decodeURIComponent(given.password) : randomBytes(18).toString('base64url');
const url = await ensureSinkRole(admin, { role, password }).catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
if (process.argv.includes('--print-url')) console.log(given ? given.toString() : url);
else console.log(`Sinks write as role ${role}, into schema ${SINK_SCHEMA}, and reach none of Keyflow's tables.`);
