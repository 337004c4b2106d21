import type { PrismaClient } from '@keyflow/db';

export type ChunkScope = 'KEYED' | 'OPERATOR';

export interface StateChunkData {
  vertexId: string;
  scope: ChunkScope;
  part: number;
  data: Uint8Array;
}

/** Writes one subtask's state chunks of a checkpoint (one row per operator × key group, or per split). */
export async function writeChunks(prisma: PrismaClient, checkpointId: number, chunks: StateChunkData[]): Promise<void> {
  for (let i = 0; i < chunks.length; i += 500) {
    await prisma.stateChunk.createMany({
      data: chunks.slice(i, i + 500).map((c) => ({ checkpointId, ...c, data: new Uint8Array(c.data) })),
    });
  }
}

/** Reads the chunks of one operator in a checkpoint whose part lies in [from, to]. */
export async function readChunks(
  prisma: PrismaClient,
  checkpointId: number,
  vertexId: string,
  scope: ChunkScope,
  from: number,
  to: number,
): Promise<{ part: number; data: Uint8Array }[]> {
  return prisma.stateChunk.findMany({
    where: { checkpointId, vertexId, scope, part: { gte: from, lte: to } },
    select: { part: true, data: true },
    orderBy: { part: 'asc' },
  });
}
