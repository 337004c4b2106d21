import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/client.ts';

export * from './generated/client.ts';
export { ensureDatabase, migrate, type MigrateOptions, type MigrateResult } from './migrate.ts';
export {
  openSecret,
  openJson,
  sealJson,
  sealSecret,
  SECRET_KEY_MIN_LENGTH,
  secretKey,
  secretKeyProblem,
  SecretsError,
  type SecretKey,
  type SecretsErrorCode,
} from './secrets.ts';
export {
  connectionConfig,
  ConnectionError,
  connectionProfile,
  connectionSecretContext,
  hasSecrets,
  loadConnection,
  openConnectionSecrets,
  sealConnectionSecrets,
  type ConnectionConfig,
  type ConnectionProfile,
  type ConnectionSecrets,
  type ConnectionTls,
} from './connections.ts';
export { DEFAULT_SINK_ROLE, ensureSinkRole, SINK_SCHEMA, sinkDatabaseUrlOf, type SinkRoleOptions } from './sinkRole.ts';

/** A Prisma client on `databaseUrl` through the node-postgres driver adapter. */
export function createPrisma(databaseUrl: string): PrismaClient {
  return new PrismaClient({
    adapter: new PrismaPg({ connectionString: databaseUrl }),
    // Prisma's defaults (2 s to start, 5 s to finish) fail lifecycle transitions on a busy 2-core machine.
    transactionOptions: { maxWait: 10_000, timeout: 30_000 },
  });
}
