import { randomBytes, randomUUID } from 'node:crypto';
import { createPrisma, type PrismaClient } from '@keyflow/db';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointStorage, type StateChunkData } from './checkpointStorage.ts';

// The test run's migrated database (the run's global setup makes it).
const url = process.env.DATABASE_URL!;
const SEED = Number(process.env.KEYFLOW_PROPERTY_SEED ?? Date.now() % 2 ** 31);

describe('checkpoint storage', () => {
  let prisma: PrismaClient;
  let storage: CheckpointStorage;
  let pipelineId: string;

  /** A checkpoint row of a job of its own, for chunks to belong to. */
  const checkpoint = async (): Promise<number> => {
    const version = await prisma.pipelineVersion.create({ data: { pipelineId, version: Math.floor(Math.random() * 2 ** 30), graph: {} } });
    const job = await prisma.job.create({ data: { pipelineId, pipelineVersionId: version.id, plan: {} } });
    const cp = await prisma.checkpoint.create({ data: { jobId: job.id, number: 1, attempt: 1, totalSubtasks: 1 } });
    return cp.id;
  };

  beforeAll(async () => {
    prisma = createPrisma(url);
    storage = new CheckpointStorage(url);
    pipelineId = (await prisma.pipeline.create({ data: { name: `storage-${randomUUID()}` } })).id;
  });
  afterAll(async () => {
    await prisma.pipeline.delete({ where: { id: pipelineId } });
    await storage.close();
    await prisma.$disconnect();
  });

  it('reads back what it wrote, byte for byte, by part: empty, small and large chunks, any vertex name (seeded property)', async () => {
    console.log(`checkpoint storage property seed ${SEED}`);
    const chunk = fc.record({
      vertexId: fc.constantFrom('count', 'wïndow-é', 'a'.repeat(200)),
      scope: fc.constantFrom('KEYED' as const, 'OPERATOR' as const),
      part: fc.nat({ max: 32_767 }),
      // Mostly small, some far beyond the 256 KiB the writer gathers rows into.
      size: fc.oneof(fc.nat({ max: 300 }), fc.nat({ max: 600_000 })),
    });
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(chunk, { selector: (c) => `${c.vertexId}/${c.scope}/${c.part}`, maxLength: 60 }), async (specs) => {
        const id = await checkpoint();
        const chunks: StateChunkData[] = specs.map(({ size, ...c }) => ({ ...c, data: new Uint8Array(randomBytes(size)) }));
        await storage.write(id, chunks);
        for (const vertexId of new Set(chunks.map((c) => c.vertexId)))
          for (const scope of ['KEYED', 'OPERATOR'] as const) {
            const expected = chunks.filter((c) => c.vertexId === vertexId && c.scope === scope).sort((a, b) => a.part - b.part);
            const all = await storage.read(id, vertexId, scope, 0, 32_767);
            expect(all.map((c) => c.part)).toEqual(expected.map((c) => c.part));
            for (const [i, c] of all.entries()) expect(Buffer.from(c.data).equals(Buffer.from(expected[i]!.data))).toBe(true);
            // A range takes only its parts.
            const mid = expected[Math.floor(expected.length / 2)]?.part ?? 0;
            expect((await storage.read(id, vertexId, scope, mid, mid)).map((c) => c.part)).toEqual(expected.some((c) => c.part === mid) ? [mid] : []);
          }
      }),
      { seed: SEED, numRuns: Number(process.env.KEYFLOW_PROPERTY_RUNS ?? 15) },
    );
  });

  it('writes a checkpoint all or nothing: a write that fails leaves no chunk of it, and the storage goes on working', async () => {
    const id = await checkpoint();
    const good = (part: number): StateChunkData => ({ vertexId: 'count', scope: 'KEYED', part, data: new Uint8Array([part]) });
    // Part 2 twice: the primary key refuses the second, after the first two rows went in.
    await expect(storage.write(id, [good(1), good(2), good(2)])).rejects.toThrow(/duplicate key/);
    expect(await storage.read(id, 'count', 'KEYED', 0, 10)).toEqual([]);
    // A checkpoint that does not exist (deleted meanwhile): refused by its foreign key.
    await expect(storage.write(2 ** 31 - 1, [good(1)])).rejects.toThrow(/foreign key/);
    await storage.write(id, [good(1), good(2)]);
    expect((await storage.read(id, 'count', 'KEYED', 0, 10)).map((c) => [c.part, [...c.data]])).toEqual([
      [1, [1]],
      [2, [2]],
    ]);
  });

  it('stores the bytes uncompressed: pglz shrank msgpack state by a quarter at seven times the cost of the write', async () => {
    const [row] = await prisma.$queryRawUnsafe<{ storage: string }[]>(
      `SELECT attstorage::text AS storage FROM pg_attribute WHERE attrelid = '"StateChunk"'::regclass AND attname = 'data'`,
    );
    expect(row?.storage).toBe('e');
  });
});
