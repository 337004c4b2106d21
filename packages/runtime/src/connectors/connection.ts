import type { ConnectionProfile } from '@keyflow/db';
import { Redis, type RedisOptions } from 'ioredis';

/** A stored connection profile with its secrets opened: what a connector connects with (never logged). */
export type { ConnectionProfile } from '@keyflow/db';

/** Looks a connection profile up by name; rejects naming the connection when it is missing or cannot be decrypted. */
export type ConnectionResolver = (name: string) => Promise<ConnectionProfile>;

/**
 * A Redis connection for a connector: from its connection profile, or a duplicate of Keyflow's own when it names
 * none. Connectors that block (XREAD) need one of their own.
 */
export async function connectorRedis(own: Redis, resolve: ConnectionResolver, name: string | undefined, extra: RedisOptions = {}): Promise<Redis> {
  if (!name) return own.duplicate(extra);
  const c = await resolve(name);
  return new Redis(c.url, {
    ...(c.username && { username: c.username }),
    ...(c.password && { password: c.password }),
    ...(c.tls && { tls: { ...c.tls } }),
    ...extra,
  });
}
