import { afterAll, beforeAll, describe, it } from 'vitest';
import { expectExactThroughFailures } from './connectorExactness.ts';
import { startStack, type Stack } from './harness.ts';

// Real brokers feeding a keyed count into an exactly-once Postgres sink, through a worker killed mid-run and live
// rescales of the source and the count. KEYFLOW_CONNECTOR_RECORDS raises the published set (default 500,000).
const TOTAL = Number(process.env.KEYFLOW_CONNECTOR_RECORDS ?? 500_000);
const KEYS = 10_000;

describe('broker sources, exactly-once through a kill -9 and live rescales', () => {
  let stack: Stack;
  beforeAll(async () => {
    // Three workers of four slots: one is killed, and the rescales need room on the other two.
    stack = await startStack({ workers: 3, slots: 4, env: { HEARTBEAT_TIMEOUT_MS: '2000' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it(`Redis Streams: ${TOTAL.toLocaleString('en-US')} entries over ${KEYS.toLocaleString('en-US')} keys in four stream keys, each counted once`, async () => {
    const streams = [0, 1, 2, 3].map((i) => `${stack.prefix}:test-stream:${i}`);
    await expectExactThroughFailures(
      stack,
      'rs_counts',
      {
        source: { type: 'redisStream', settings: { streams: streams.join(',') } },
        target: { kind: 'redis', url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', streams },
      },
      { total: TOTAL, keys: KEYS },
    );
  });
});
