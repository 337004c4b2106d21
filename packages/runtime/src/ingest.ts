import { getField, isKey, keyGroupFor, type HttpSourceSettings, type Rec } from '@keyflow/core';
import type { Redis } from 'ioredis';
import type { RedisKeys } from './keys.ts';

/** The entry field of the ingest log that holds a record's JSON. */
export const INGEST_FIELD = 'data';

/** What the append side needs of an HTTP source's settings. */
export type IngestLog = Pick<HttpSourceSettings, 'name' | 'partitions' | 'partitionKey' | 'maxBacklog'>;

/** The streams of an HTTP source's ingest log, one per partition (the source's splits, in order). */
export function ingestStreams(keys: RedisKeys, name: string, partitions: number): string[] {
  return Array.from({ length: partitions }, (_, p) => keys.ingest(name, p));
}

/**
 * The partition of a record: its `partitionKey` field's value hashed as keys are (murmur of Java's hashCode, so the
 * same value always lands in the same partition); undefined when it has no such value, and is spread instead.
 */
export function partitionOf(record: Rec, partitionKey: string | undefined, partitions: number): number | undefined {
  if (!partitionKey) return undefined;
  const value = getField(record, partitionKey);
  return isKey(value) ? keyGroupFor(value, partitions) : undefined;
}

/**
 * Appends records to the ingest log, all or nothing, unless the log's backlog (entries over all partitions) plus them
 * would exceed `maxBacklog`: then nothing is appended and the backlog is returned.
 * KEYS: the partitions' streams; ARGV[1] maxBacklog, ARGV[2] the field, then (1-based partition, JSON) pairs.
 */
const appendScript = `
local backlog = 0
for i = 1, #KEYS do backlog = backlog + redis.call('XLEN', KEYS[i]) end
local n = (#ARGV - 2) / 2
if backlog + n > tonumber(ARGV[1]) then return {0, backlog} end
for i = 3, #ARGV, 2 do redis.call('XADD', KEYS[tonumber(ARGV[i])], '*', ARGV[2], ARGV[i + 1]) end
return {n, backlog}
`;

interface IngestRedis extends Redis {
  /** Keys and arguments as arrays (ioredis flattens them): a spread of a big request's records would overflow the stack. */
  ingestAppend(numKeys: number, keys: string[], args: (string | number)[]): Promise<[number, number]>;
  ingestTrim(stream: string, marks: string, id: string, next: string, partition: number): Promise<number>;
}

function withIngestScripts(redis: Redis): IngestRedis {
  if (!('ingestAppend' in redis)) redis.defineCommand('ingestAppend', { lua: appendScript });
  if (!('ingestTrim' in redis)) redis.defineCommand('ingestTrim', { numberOfKeys: 2, lua: trimScript });
  return redis as IngestRedis;
}

/** What an append did: `appended` records (0 and `refused` when the backlog bound said no), and the backlog before it. */
export interface AppendResult {
  appended: number;
  refused: boolean;
  backlog: number;
}

/**
 * Appends records (JSON objects, as a request's body gave them) to an HTTP source's ingest log in one atomic script:
 * each to its partition by `partitionKey`, those without one dealt round robin from a random partition. Resolves once
 * Redis has them all (or refused them all for the backlog bound).
 */
export async function appendToIngest(redis: Redis, keys: RedisKeys, log: IngestLog, records: readonly Rec[]): Promise<AppendResult> {
  const streams = ingestStreams(keys, log.name, log.partitions);
  const args: (string | number)[] = [log.maxBacklog, INGEST_FIELD];
  let next = Math.floor(Math.random() * log.partitions);
  for (const r of records) {
    const p = partitionOf(r, log.partitionKey, log.partitions) ?? next++ % log.partitions;
    args.push(p + 1, JSON.stringify(r));
  }
  const [appended, backlog] = await withIngestScripts(redis).ingestAppend(streams.length, streams, args);
  return { appended, refused: appended === 0 && records.length > 0, backlog };
}

/** Entries waiting in an HTTP source's ingest log over all its partitions: what no completed checkpoint covers yet. */
export async function ingestBacklog(redis: Redis, keys: RedisKeys, name: string, partitions: number): Promise<number> {
  const multi = redis.multi();
  for (const key of ingestStreams(keys, name, partitions)) multi.xlen(key);
  const res = (await multi.exec()) ?? [];
  return res.reduce((n, [err, len]) => {
    if (err) throw err;
    return n + Number(len);
  }, 0);
}

/**
 * Trims a partition through an entry id (that entry included) and notes the highest id it was trimmed through.
 * KEYS[1] the partition's stream, KEYS[2] the log's trim marks; ARGV[1] the id, ARGV[2] the id after it, ARGV[3] the partition.
 */
const trimScript = `
local removed = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[2])
local function parse(id)
  local d = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, d - 1)), tonumber(string.sub(id, d + 1))
end
local prev = redis.call('HGET', KEYS[2], ARGV[3])
if prev then
  local pm, ps = parse(prev)
  local m, s = parse(ARGV[1])
  if pm > m or (pm == m and ps >= s) then return removed end
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[1])
return removed
`;

/**
 * Trims a partition of an ingest log through entry `id` (it included): what a completed checkpoint covers is never
 * read again, since a recovery reads after the offset it restores. Returns the entries removed.
 */
export function trimIngest(redis: Redis, keys: RedisKeys, name: string, partition: number, id: string): Promise<number> {
  return withIngestScripts(redis).ingestTrim(keys.ingest(name, partition), keys.ingestTrimmed(name), id, nextStreamId(id), partition);
}

/** The entry id a partition of an ingest log was last trimmed through, if it ever was. */
export async function trimmedThrough(redis: Redis, keys: RedisKeys, name: string, partition: number): Promise<string | undefined> {
  return (await redis.hget(keys.ingestTrimmed(name), String(partition))) ?? undefined;
}

/** Orders stream entry ids ("ms-seq"). */
export function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am !== bm ? (am > bm ? 1 : -1) : as !== bs ? (as > bs ? 1 : -1) : 0;
}

/** The smallest stream entry id after `id` ("ms-seq"). */
export function nextStreamId(id: string): string {
  const dash = id.indexOf('-');
  const ms = BigInt(id.slice(0, dash));
  const seq = BigInt(id.slice(dash + 1));
  return seq === 0xffffffffffffffffn ? `${ms + 1n}-0` : `${ms}-${seq + 1n}`;
}
