-- State chunks are msgpack that pglz barely shrinks but spends most of a checkpoint's write on: kept out of line,
-- uncompressed.
ALTER TABLE "StateChunk" ALTER COLUMN "data" SET STORAGE EXTERNAL;
