// Makes each test run isolated: its own database (migrated, with a sink role) and its own Redis key prefix.
// Test workers are forked after this runs, so they inherit the environment set here.
import { randomBytes } from 'node:crypto';
import { createMigratedDatabase, createSinkRole, dropDatabase, dropStaleDatabases, uniqueDatabaseName } from '@keyflow/db/testing';
import { deleteKeys } from './scripts/lib/redis.mjs';

const DEFAULT_SERVER = 'postgresql://postgres@127.0.0.1:5432/postgres';

export default async function setup() {
  const server = process.env.TEST_DATABASE_URL || DEFAULT_SERVER;
  await dropStaleDatabases(server);
  const databaseUrl = await createMigratedDatabase(server, uniqueDatabaseName());
  const prefix = `kft-${randomBytes(4).toString('hex')}`;
  const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

  process.env.DATABASE_URL = databaseUrl;
  // Sinks write through their own restricted role, as a deployment's should (KEYFLOW_SINK_DATABASE_URL).
  process.env.KEYFLOW_SINK_DATABASE_URL = await createSinkRole(databaseUrl);
  process.env.REDIS_URL = redisUrl;
  process.env.KEYFLOW_PREFIX = prefix;

  return async function teardown() {
    await dropDatabase(databaseUrl);
    // Both plain keys and Redis Cluster hash-tagged ones ({prefix}...).
    await deleteKeys(redisUrl, [`${prefix}*`, `{${prefix}}*`]).catch((error: Error) => {
      console.warn(`Could not delete Redis keys ${prefix}*: ${error.message}`);
    });
  };
}
