// Gives each test file of the stacks group a database of its own (migrated, with its sink role), so that two files
// can run at once: a control plane takes up every active job of its database when it starts, and would otherwise
// adopt the jobs of the file beside it. Redis needs nothing: each stack has its own key prefix.
import { createMigratedDatabase, createSinkRole, dropDatabase, uniqueDatabaseName } from '@keyflow/db/testing';
import { afterAll } from 'vitest';

const server = process.env.DATABASE_URL;
if (!server) throw new Error('DATABASE_URL is not set: the stacks group runs under vitest.global-setup.ts');

const databaseUrl = await createMigratedDatabase(server, uniqueDatabaseName());
process.env.DATABASE_URL = databaseUrl;
process.env.KEYFLOW_SINK_DATABASE_URL = await createSinkRole(databaseUrl);

afterAll(() => dropDatabase(databaseUrl));
