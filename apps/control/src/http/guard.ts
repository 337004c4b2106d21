import { mayAct, type Role } from '@keyflow/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadCredentials, type Accounts, type Principal } from '../auth/accounts.ts';
import { Refused } from '../jobs/refusal.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Whom the request is from; set on every route behind auth before its handler runs. */
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** The least role a route needs; without it, reads need viewer and changes operator. `'open'`: no credentials. */
    role?: Role | 'open';
  }
}

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The role a route needs: its own `config.role`, else viewer for reads and operator for changes. */
export function neededRole(req: FastifyRequest): Role | 'open' {
  return req.routeOptions.config?.role ?? (READS.has(req.method) ? 'viewer' : 'operator');
}

/** The principal of a request that passed the guard. */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new Refused('unauthorized', 'sign in, or send an API key as "Authorization: Bearer <key>"');
  return req.principal;
}

/**
 * Puts every route behind auth: 401 without valid credentials, 403 for a role that may not. A change made with a
 * session cookie must also come from an allowed origin and say it is JSON: a page on another site can neither send
 * that content type without the browser asking the control plane first (CORS preflight, which it does not allow)
 * nor forge its Origin. Requests with an API key carry no ambient credentials, so they need neither.
 */
export function installGuard(app: FastifyInstance, accounts: Accounts, allowedOrigins: readonly string[]): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (req) => {
    const needed = neededRole(req);
    if (needed === 'open') return;
    let principal: Principal | null;
    try {
      principal = await accounts.resolve(req.headers);
    } catch (err) {
      if (err instanceof BadCredentials) throw new Refused('unauthorized', err.message);
      throw err;
    }
    if (!principal) throw new Refused('unauthorized', 'sign in, or send an API key as "Authorization: Bearer <key>"');
    req.principal = principal;
    if (!mayAct(principal.role, needed))
      throw new Refused('forbidden', `${req.method} ${req.routeOptions.url ?? req.url} needs the ${needed} role; you are ${article(principal.role)}`);
    if (principal.kind === 'user' && !READS.has(req.method)) {
      const origin = req.headers.origin;
      if (!origin || !allowedOrigins.includes(origin))
        throw new Refused(
          'forbidden',
          `cross-site request refused: ${origin ? `origin ${origin} is` : 'a request without an Origin header is'} not allowed to change anything with a session (KEYFLOW_ALLOWED_ORIGINS)`,
        );
      if (!/^application\/json\b/i.test(req.headers['content-type'] ?? ''))
        throw new Refused('unsupported-media-type', 'a change made with a session is sent as application/json');
    }
  });
}

const article = (role: Role) => (role === 'admin' || role === 'operator' ? `an ${role}` : `a ${role}`);
