import { EventGenerator, KeyedStateBackend, decodeBatch, decodeValue, type GraphInput } from '@keyflow/core';
import { parseEntry, redisKeys } from '@keyflow/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatorCounts, startStack, tableCounts, waitFor, waitForFinished, waitForState, type Stack } from './harness.ts';

const TOTAL = 1_000_000;
const KEYS = 50_000;
const SPLITS = 16;
const generatorSettings = { seed: 11, rate: 250_000, keys: KEYS, skew: 'zipf', total: TOTAL, splits: SPLITS } as const;

const pipeline = (table: string): GraphInput => ({
  vertices: [
    { id: 'events', type: 'generator', parallelism: 1, settings: generatorSettings },
    { id: 'count', type: 'count', parallelism: 2 },
    { id: 'sink', type: 'postgres', parallelism: 2, settings: { table, valueField: 'count', flushIntervalMs: 200 } },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'sink', partitioning: 'forward' },
  ],
});

/** Counts per user computed straight from the generator, without the engine: events of split s below offsets[s]. */
function expectedCounts(offsets?: Map<number, number>): Map<string, number> {
  const gen = new EventGenerator({ ...generatorSettings, zipfExponent: 1 });
  const counts = new Map<string, number>();
  for (let s = 0; s < SPLITS; s++) {
    const end = offsets ? offsets.get(s)! : gen.splitSize(s);
    for (let o = 0; o < end; o++) {
      const user = gen.eventAt(gen.indexOf(s, o)).user;
      counts.set(user, (counts.get(user) ?? 0) + 1);
    }
  }
  return counts;
}

describe('keyed count pipeline on Postgres, Redis and BullMQ workers', () => {
  let stack: Stack;
  let pipelineId: string;
  let jobId: string;
  const full = generatorCounts({ ...generatorSettings, total: TOTAL });

  beforeAll(async () => {
    stack = await startStack({ workers: 2 });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('counts every key exactly over 1,000,000 events while checkpointing', async () => {
    const p = await stack.client.createPipeline({ name: `exact-${stack.prefix}`, graph: pipeline('exact_counts_1') });
    pipelineId = p.id;
    const job = await stack.client.deployJob({ pipelineId, checkpointIntervalMs: 500 });
    jobId = job.id;
    const done = await waitForFinished(stack, jobId, 110_000);
    expect(done.events.map((e) => e.toState)).toEqual(['CREATED', 'SCHEDULING', 'RUNNING', 'FINISHED']);

    const actual = await tableCounts('exact_counts_1');
    expect(actual.size).toBe(full.size);
    const wrong = [...full].filter(([k, n]) => actual.get(k) !== n);
    expect(wrong.slice(0, 5)).toEqual([]);
  });

  it('stored at least two completed checkpoints with their chunks and acknowledgements', async () => {
    const completed = await stack.prisma.checkpoint.findMany({
      where: { jobId, status: 'COMPLETED' },
      include: { acks: true, _count: { select: { chunks: true } } },
      orderBy: { number: 'asc' },
    });
    expect(completed.length).toBeGreaterThanOrEqual(2);
    for (const c of completed) {
      expect(c.totalSubtasks).toBe(5);
      expect(c.acks.map((a) => `${a.vertexId}#${a.subtaskIndex}`).sort()).toEqual(['count#0', 'count#1', 'events#0', 'sink#0', 'sink#1']);
      expect(c._count.chunks).toBeGreaterThan(SPLITS);
      expect(Number(c.bytes)).toBeGreaterThan(0);
      expect(c.durationMs).not.toBeNull();
    }
  });

  it('each checkpoint holds exactly the counts of the events before its source offsets', async () => {
    const completed = await stack.prisma.checkpoint.findMany({ where: { jobId, status: 'COMPLETED' }, orderBy: { number: 'asc' } });
    for (const c of completed) {
      const { offsets, backend } = await loadCheckpoint(stack, c.id);
      const expected = expectedCounts(offsets);
      const count = backend.valueState<number>('count');
      const wrong: string[] = [];
      for (const [user, n] of expected) {
        backend.setCurrentKey(user);
        if (count.value() !== n) wrong.push(`${user}: ${count.value()} ≠ ${n}`);
      }
      expect(wrong.slice(0, 5)).toEqual([]);
      expect(backend.keyCount()).toBe(expected.size);
    }
  });

  it('a job deployed from a checkpoint restores its state and offsets and ends with exact counts', async () => {
    const checkpoint = await stack.prisma.checkpoint.findFirstOrThrow({ where: { jobId, status: 'COMPLETED' }, orderBy: { number: 'asc' } });
    const { offsets, chunks } = await loadCheckpoint(stack, checkpoint.id);
    const atCheckpoint = expectedCounts(offsets);
    const keyedChunks = chunks.filter((c) => c.scope === 'KEYED').length;

    await stack.client.createVersion(pipelineId, pipeline('exact_counts_2'));
    const job = await stack.client.deployJob({ pipelineId, restoreFromCheckpointId: checkpoint.id, checkpointIntervalMs: 500 });
    const done = await waitForFinished(stack, job.id, 110_000);
    // Every key group of the checkpoint was loaded by the subtask that owns it.
    const running = done.events.find((e) => e.toState === 'RUNNING')!;
    expect(running.reason).toContain(`restored ${keyedChunks} key groups`);

    // Keys the restored job saw again carry restored + new counts; the others kept their checkpointed count.
    const written = await tableCounts('exact_counts_2');
    const wrong: string[] = [];
    for (const [user, n] of full) {
      const seenAgain = (atCheckpoint.get(user) ?? 0) !== n;
      const value = written.get(user) ?? atCheckpoint.get(user);
      if (value !== n || (seenAgain && !written.has(user))) wrong.push(`${user}: ${value} ≠ ${n}`);
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    expect([...written.keys()].filter((k) => !full.has(k))).toEqual([]);
  });

  it('sends only the fields an operator reads over its input channels: the key into count, key and field into sum', async () => {
    const unbounded = { ...generatorSettings, rate: 0, total: undefined };
    const p = await stack.client.createPipeline({
      name: `projection-${stack.prefix}`,
      graph: {
        vertices: [
          { id: 'events', type: 'generator', parallelism: 1, settings: unbounded },
          { id: 'count', type: 'count', parallelism: 1 },
          { id: 'total', type: 'sum', parallelism: 1, settings: { field: 'amount' } },
          { id: 'counts', type: 'blackhole', parallelism: 1 },
          { id: 'totals', type: 'blackhole', parallelism: 1 },
        ],
        edges: [
          { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
          { from: 'events', to: 'total', partitioning: 'hash', key: 'user' },
          { from: 'count', to: 'counts', partitioning: 'forward' },
          { from: 'total', to: 'totals', partitioning: 'forward' },
        ],
      },
    });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 60_000 });
    try {
      await waitForState(stack, job.id, 'RUNNING', 30_000);
      // Each channel's entries are read and trimmed as they come: look until an entry of each edge was caught.
      const keys = redisKeys(stack.prefix);
      const fieldsByEdge = await waitFor(
        async () => {
          const seen = new Map<number, string[]>();
          for (const edge of [0, 1]) {
            // Watermarks and barriers share the channel: the first record batch in it, read as the consumer reads it.
            const entries = await stack.redis.xrangeBuffer(keys.channel(job.id, 1, edge, [0, 0], [0, 0]), '-', '+', 'COUNT', 20);
            const batch = entries.map(([, fields]) => parseEntry(fields)).find((e) => e?.type === 'batch');
            if (batch?.type === 'batch') seen.set(edge, [...new Set(decodeBatch(batch.data).flatMap((r) => Object.keys(r as object)))]);
          }
          return seen.size === 2 && seen;
        },
        30_000,
        'a record batch on each of the two channels',
      );
      // The generator's events have user, item, amount and ts; count reads only its key, sum its key and amount.
      expect(fieldsByEdge.get(0)).toEqual(['user']);
      expect(fieldsByEdge.get(1)).toEqual(['user', 'amount']);
    } finally {
      await stack.client.cancelJob(job.id);
    }
  });
});

async function loadCheckpoint(stack: Stack, checkpointId: number) {
  const chunks = await stack.prisma.stateChunk.findMany({ where: { checkpointId } });
  const offsets = new Map<number, number>();
  const backend = new KeyedStateBackend(128);
  for (const c of chunks) {
    if (c.vertexId === 'events' && c.scope === 'OPERATOR') offsets.set(c.part, decodeValue<{ offset: number }>(c.data).offset);
    if (c.vertexId === 'count' && c.scope === 'KEYED') backend.restore(c.part, c.data);
  }
  expect(offsets.size).toBe(SPLITS);
  return { chunks, offsets, backend };
}
