import { Packr } from 'msgpackr';

/** A record as it flows between operators: a plain object of fields. */
export type Rec = Record<string, unknown>;

const packr = new Packr({ useRecords: true, useBigIntExtension: true });

/** Encodes a batch of records into one channel entry payload. */
export function encodeBatch(records: readonly unknown[]): Buffer {
  return packr.pack(records);
}

/** Decodes a channel entry payload; throws on bytes that are not a batch. */
export function decodeBatch(bytes: Uint8Array): unknown[] {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (cause) {
    // msgpackr's own messages ("Data read, but end of buffer not reached 104") do not say what was being read.
    throw new Error(`channel entry is not a record batch: not MessagePack (${(cause as Error).message})`, { cause });
  }
  if (!Array.isArray(value)) throw new Error(`channel entry is not a record batch: it holds ${value === null ? 'null' : typeof value}, not an array`);
  return value;
}

/** Encodes any state value (used for state chunks and operator state). */
export function encodeValue(value: unknown): Buffer {
  return packr.pack(value);
}

export function decodeValue<T = unknown>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}
