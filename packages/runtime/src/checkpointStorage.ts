import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

export type ChunkScope = 'KEYED' | 'OPERATOR';

export interface StateChunkData {
  vertexId: string;
  scope: ChunkScope;
  part: number;
  data: Uint8Array;
}

const COPY_CHUNKS = `COPY "StateChunk" ("checkpointId", "vertexId", "scope", "part", "data") FROM STDIN (FORMAT binary)`;

/**
 * Where subtasks keep their state chunks: the `StateChunk` table, through a small pool of its own.
 *
 * A checkpoint's chunks go in one binary COPY rather than Prisma `createMany`: no base64 or JSON encoding of the
 * bytes, one statement, all or nothing. It also keeps the bytes out of the worker's heap afterwards: Prisma's debug
 * module keeps the arguments of its last 100 log calls even when logging is off, and the driver adapter logs every
 * query's parameters, so each worker held the last 100 chunk batches (about 600 MB at a million keys).
 */
export class CheckpointStorage {
  private readonly pool: pg.Pool;

  constructor(databaseUrl: string) {
    // Two connections: a checkpoint's write and a restore's reads (a rescale) may overlap.
    this.pool = new pg.Pool({ connectionString: databaseUrl, max: 2, idleTimeoutMillis: 30_000 });
    this.pool.on('error', () => {}); // an idle connection that died; the next use gets a fresh one
  }

  /** Writes one subtask's state chunks of a checkpoint (one row per operator × key group, or per split), all or none. */
  async write(checkpointId: number, chunks: StateChunkData[]): Promise<void> {
    if (!chunks.length) return;
    const c = await this.pool.connect();
    try {
      await pipeline(Readable.from(copyRows(checkpointId, chunks)), c.query(copyFrom(COPY_CHUNKS)));
      c.release();
    } catch (err) {
      // A connection whose COPY broke off is not reused.
      c.release(err as Error);
      throw err;
    }
  }

  /** Reads the chunks of one operator in a checkpoint whose part lies in [from, to], by part. */
  async read(checkpointId: number, vertexId: string, scope: ChunkScope, from: number, to: number): Promise<{ part: number; data: Uint8Array }[]> {
    const { rows } = await this.pool.query<{ part: number; data: Buffer }>(
      `SELECT "part", "data" FROM "StateChunk"
       WHERE "checkpointId" = $1 AND "vertexId" = $2 AND "scope" = $3::"StateScope" AND "part" BETWEEN $4 AND $5
       ORDER BY "part"`,
      [checkpointId, vertexId, scope, from, to],
    );
    return rows;
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/** Rows gathered into pieces of about this size before they are written to the connection. */
const PIECE_BYTES = 256 * 1024;

/**
 * The chunks in PostgreSQL's binary COPY format (the header, one tuple per chunk, the trailer): each field is its
 * length as int32 and its bytes in the type's binary form; int4 big-endian, text, enum labels and bytea as they are.
 */
function* copyRows(checkpointId: number, chunks: StateChunkData[]): Generator<Buffer> {
  const header = Buffer.alloc(19);
  header.write('PGCOPY\n\xff\r\n\0', 'latin1'); // signature; then flags and header extension length, both 0
  let piece: Buffer[] = [header];
  let size = header.length;
  for (const c of chunks) {
    const vertex = Buffer.from(c.vertexId);
    const scope = Buffer.from(c.scope);
    const head = Buffer.alloc(2 + 8 + 4 + vertex.length + 4 + scope.length + 8 + 4);
    let o = head.writeInt16BE(5, 0);
    o = head.writeInt32BE(4, o);
    o = head.writeInt32BE(checkpointId, o);
    o = head.writeInt32BE(vertex.length, o);
    o += vertex.copy(head, o);
    o = head.writeInt32BE(scope.length, o);
    o += scope.copy(head, o);
    o = head.writeInt32BE(4, o);
    o = head.writeInt32BE(c.part, o);
    head.writeInt32BE(c.data.byteLength, o);
    const data = Buffer.from(c.data.buffer, c.data.byteOffset, c.data.byteLength);
    piece.push(head);
    size += head.length;
    // A large chunk goes as it is, not copied into a piece.
    if (data.length >= PIECE_BYTES) {
      yield Buffer.concat(piece, size);
      yield data;
      piece = [];
      size = 0;
      continue;
    }
    piece.push(data);
    size += data.length;
    if (size >= PIECE_BYTES) {
      yield Buffer.concat(piece, size);
      piece = [];
      size = 0;
    }
  }
  const trailer = Buffer.alloc(2);
  trailer.writeInt16BE(-1);
  piece.push(trailer);
  yield Buffer.concat(piece, size + 2);
}
