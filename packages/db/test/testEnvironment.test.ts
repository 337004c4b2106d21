// The root vitest globalSetup must reach every test worker: an isolated database and Redis prefix.
import pg from 'pg';
import { expect, it } from 'vitest';
import { redisAnswers } from '../../../scripts/lib/redis.mjs';

it('gives each run its own migrated database and Redis key prefix', async () => {
  expect(process.env.DATABASE_URL).toMatch(/\/keyflow_test_[0-9a-z]+_[0-9a-f]{8}$/);
  expect(process.env.KEYFLOW_PREFIX).toMatch(/^kft-[0-9a-f]{8}$/);
  expect(await redisAnswers(process.env.REDIS_URL!)).toBe(true);

  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query('SELECT count(*)::int AS n FROM "_prisma_migrations" WHERE finished_at IS NOT NULL');
    expect(rows[0].n).toBeGreaterThan(0);
  } finally {
    await client.end();
  }
});
