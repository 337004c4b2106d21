import { randomBytes } from 'node:crypto';
import type { Chain } from '@keyflow/core';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { sendHandover } from '../handover.ts';
import { redisKeys } from '../keys.ts';
import { silentLogger } from '../logger.ts';
import type { Command, TaskData } from '../protocol.ts';
import { OperatorChain } from './chain.ts';
import { Commands } from './commands.ts';
import { SubtaskContext, type SubtaskDeps } from './context.ts';
import { Counters } from './counters.ts';
import { HandoverLoader } from './handoverLoader.ts';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const prefix = `${process.env.KEYFLOW_PREFIX ?? 'kft'}-loader-${randomBytes(3).toString('hex')}`;
const keys = redisKeys(prefix);
const contexts: SubtaskContext[] = [];
afterAll(async () => {
  for (const ctx of contexts) ctx.blocking.disconnect();
  const left = await redis.keys(`${prefix}*`);
  if (left.length) await redis.del(...left);
  redis.disconnect();
});

/** A subtask of a chain with no operators, enough to wait for a handover and take commands. */
function subtask(jobId: string) {
  const task: TaskData = { jobId, attempt: 1, vertexId: 'count', index: 0, parallelism: 1 };
  const deps = { redis, keys, workerId: 'w', databaseUrl: '', logger: silentLogger } as unknown as SubtaskDeps;
  const ctx = new SubtaskContext(task, deps);
  contexts.push(ctx);
  ctx.chain = { id: 'count', vertices: [], parallelism: 1, inputs: [], outputs: [] } as unknown as Chain;
  const handled: Command['type'][] = [];
  const commands = new Commands(ctx, async (c) => void handled.push(c.type));
  const chain = new OperatorChain(ctx, new Counters(), { emit: () => {} }, {} as never);
  return { ctx, commands, handled, loader: new HandoverLoader(ctx, chain, commands) };
}

const send = (jobId: string, cmd: Command) => redis.xadd(keys.commands(jobId, cmd.attempt), '*', 'c', JSON.stringify(cmd));
const expected = [{ vertexId: 'count', scope: 'KEYED' as const, parts: [1, 2] }];

describe('waiting for a handover', () => {
  it('queues the commands that come meanwhile, drops triggers, and ends on a stop; the queue runs them after', async () => {
    const { ctx, commands, handled, loader } = subtask('a');
    const waiting = loader.receive(5, expected, 9);
    await send('a', { type: 'complete', attempt: 1, checkpoint: 8, checkpointId: 80 });
    await send('a', { type: 'trigger', attempt: 1, checkpoint: 9, checkpointId: 90, kind: 'PERIODIC' });
    await send('a', { type: 'stop', attempt: 1 });
    expect(await waiting).toBeUndefined();
    expect(ctx.outcome).toBe('stopped');
    expect(handled).toEqual([]);
    await commands.drain();
    expect(handled).toEqual(['complete', 'stop']);
  });

  it('ends, canceled, when its rescale is rolled back or the rescale checkpoint aborted', async () => {
    const rolled = subtask('b');
    const waiting = rolled.loader.receive(5, expected, 9);
    await send('b', { type: 'rescale-rollback', attempt: 1, scalingId: 4 });
    await send('b', { type: 'rescale-rollback', attempt: 1, scalingId: 5 });
    expect(await waiting).toBeUndefined();
    expect(rolled.ctx.stopCause).toEqual({ cause: 'rolled-back', scalingId: 5 });
    await rolled.commands.drain();
    expect(rolled.handled).toEqual(['rescale-rollback']);

    const aborted = subtask('c');
    const waitingToo = aborted.loader.receive(5, expected, 9);
    await send('c', { type: 'abort', attempt: 1, checkpoint: 9, reason: 'timed out' });
    expect(await waitingToo).toBeUndefined();
    expect(aborted.ctx.stopCause).toEqual({ cause: 'rescale-aborted', scalingId: 5 });
  });

  it('returns once every expected part came, and deletes its stream', async () => {
    const { ctx, loader } = subtask('d');
    const waiting = loader.receive(5, expected);
    await sendHandover(redis, ctx.handoverKey(5, 0), { from: 1, vertexId: 'count', scope: 'KEYED' }, [1, 2], () => undefined);
    expect((await waiting)?.done).toBe(true);
    expect(ctx.outcome).toBeUndefined();
    await new Promise((r) => setTimeout(r, 50));
    expect(await redis.exists(ctx.handoverKey(5, 0))).toBe(0);
  });
});
