import type { Redis } from 'ioredis';

/**
 * XADD only while the stream is below its length bound, atomically: returns the entry id, or nil when the
 * stream is full and the producer must wait (that wait is backpressure).
 * KEYS[1] stream; ARGV[1] bound; ARGV[2…] field, value pairs.
 */
const boundedXadd = `
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
return redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
`;

export interface KeyflowRedis extends Redis {
  boundedXadd(key: string, bound: number, ...fieldsAndValues: (string | Buffer | number)[]): Promise<string | null>;
}

/** Registers Keyflow's Redis scripts on a connection. */
export function withScripts(redis: Redis): KeyflowRedis {
  if (!('boundedXadd' in redis)) redis.defineCommand('boundedXadd', { numberOfKeys: 1, lua: boundedXadd });
  return redis as KeyflowRedis;
}
