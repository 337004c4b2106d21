import type { Redis } from 'ioredis';

/** `boundedXadd` refused the entry: the stream is full (the producer waits: backpressure). */
export const XADD_FULL = 0;
/** `boundedXadd` refused the entry: its predecessor is not in the stream. */
export const XADD_OUT_OF_ORDER = -1;

/**
 * XADD entry `seq` of a producer only right after entry seq - 1 and while the stream is below its length bound,
 * atomically, so that entries sent many at a time land in seq order without gaps: once one is refused, every later
 * one is refused too, and the producer sends again from the first. The last accepted seq is the last-delivered id
 * `0-<seq>` of the stream's consumer group `seq` (which nothing reads from): being part of the stream, it goes
 * when the stream is deleted, and foreign entries leave it alone. An entry already in (a resend after a lost
 * reply) counts as in. Returns the stream's length once the entry is in (at least 1), else XADD_FULL or
 * XADD_OUT_OF_ORDER. KEYS[1] stream; ARGV[1] bound; ARGV[2] seq; ARGV[3…] field, value pairs.
 */
const boundedXadd = `
local seq = tonumber(ARGV[2])
local last
if redis.call('EXISTS', KEYS[1]) == 1 then
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local f = {}
    for i = 1, #group, 2 do f[group[i]] = group[i + 1] end
    if f['name'] == 'seq' then last = tonumber(string.match(f['last-delivered-id'], '%d+$')) end
  end
end
if seq <= (last or 0) then return math.max(redis.call('XLEN', KEYS[1]), 1) end
if seq ~= (last or 0) + 1 then return ${XADD_OUT_OF_ORDER} end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return ${XADD_FULL} end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
redis.call('XGROUP', last and 'SETID' or 'CREATE', KEYS[1], 'seq', '0-' .. seq)
return redis.call('XLEN', KEYS[1])
`;

export interface KeyflowRedis extends Redis {
  boundedXadd(key: string, bound: number, seq: number, ...fieldsAndValues: (string | Buffer | number)[]): Promise<number>;
}

/** Registers Keyflow's Redis scripts on a connection. */
export function withScripts(redis: Redis): KeyflowRedis {
  if (!('boundedXadd' in redis)) redis.defineCommand('boundedXadd', { numberOfKeys: 1, lua: boundedXadd });
  return redis as KeyflowRedis;
}
