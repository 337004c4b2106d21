import { createHash } from 'node:crypto';
import { fromNodeHeaders } from 'better-auth/node';
import type { FastifyPluginAsync } from 'fastify';
import type { Redis } from 'ioredis';
import { CLIENT_IP_HEADER, type Auth } from '../../auth/auth.ts';

export interface SignInLimit {
  redis: Redis;
  /** Where an account's count lives, by a hash of its email. */
  key: (account: string) => string;
  perMinute: number;
}

/**
 * Sign-in attempts per account, counted in Redis over a minute: the per-address limit alone would let a guesser who
 * can vary the address it is seen from (a proxy that passes X-Forwarded-For on) try one account without end.
 * Answers how many seconds to wait, or 0.
 */
async function accountWait(limit: SignInLimit, email: unknown): Promise<number> {
  if (typeof email !== 'string') return 0;
  const key = limit.key(createHash('sha256').update(email.trim().toLowerCase()).digest('hex').slice(0, 32));
  const [[, count], [, ttl]] = (await limit.redis.multi().incr(key).ttl(key).exec()) as [[null, number], [null, number]];
  if (ttl < 0) await limit.redis.expire(key, 60);
  return count > limit.perMinute ? Math.max(1, ttl) : 0;
}

/**
 * better-auth's own routes (sign-in, sign-out, session) under `/api/auth/*`, handed over as web requests. The
 * client's address goes with them in a header of our own (as Fastify resolved it through trusted proxies), so the
 * sign-in rate limit counts per client and a client cannot name its own address; sign-ins are also limited per account.
 */
export function authHandlerRoutes(auth: Auth, baseURL: string, limit: SignInLimit): FastifyPluginAsync {
  return async (app) => {
    app.route({
      method: ['GET', 'POST'],
      url: '/auth/*',
      config: { role: 'open' },
      async handler(req, reply) {
        if (req.method === 'POST' && req.url.split('?')[0] === '/api/auth/sign-in/email') {
          const wait = await accountWait(limit, (req.body as { email?: unknown } | undefined)?.email);
          if (wait)
            return reply
              .code(429)
              .header('retry-after', String(wait))
              .send({ error: 'too many requests', message: `too many sign-in attempts for this account: try again in ${wait} s` });
        }
        const headers = fromNodeHeaders(req.headers);
        headers.set(CLIENT_IP_HEADER, req.ip);
        const hasBody = req.body !== undefined && req.body !== null && req.method !== 'GET';
        if (hasBody) headers.delete('content-length');
        const response = await auth.handler(
          new Request(new URL(req.url, baseURL), { method: req.method, headers, body: hasBody ? JSON.stringify(req.body) : undefined }),
        );
        reply.status(response.status);
        response.headers.forEach((value, key) => {
          if (key !== 'set-cookie') reply.header(key, value);
        });
        const cookies = response.headers.getSetCookie();
        if (cookies.length) reply.header('set-cookie', cookies);
        const text = response.body ? await response.text() : null;
        return reply.send(text && response.headers.get('content-type')?.includes('json') ? withoutToken(text) : text);
      },
    });
  };
}

/**
 * The session token only ever travels in the httpOnly cookie: better-auth also puts it in sign-in answers, where a
 * page's script could read it.
 */
function withoutToken(text: string): string {
  try {
    const body = JSON.parse(text) as unknown;
    if (body && typeof body === 'object' && 'token' in body) {
      const { token: _, ...rest } = body as Record<string, unknown>;
      return JSON.stringify(rest);
    }
  } catch {
    // not JSON after all: as it came
  }
  return text;
}
