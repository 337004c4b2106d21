import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/client.ts';

export * from './generated/client.ts';
export { ensureDatabase, migrate, type MigrateOptions, type MigrateResult } from './migrate.ts';

/** A Prisma client on `databaseUrl` through the node-postgres driver adapter. */
export function createPrisma(databaseUrl: string): PrismaClient {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl }) });
}
