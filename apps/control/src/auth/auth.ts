import { apiKey } from '@better-auth/api-key';
import { prismaAdapter } from '@better-auth/prisma-adapter';
import { API_KEY_MAX_DAYS, API_KEY_PREFIX, PASSWORD_MAX, PASSWORD_MIN } from '@keyflow/api';
import type { PrismaClient } from '@keyflow/db';
import { betterAuth } from 'better-auth';
import type { Logger } from 'pino';

/** The header the control plane sets to the client's address (as Fastify resolved it through trusted proxies); anything a client sends under this name is dropped first. */
export const CLIENT_IP_HEADER = 'x-keyflow-client-ip';

export interface AuthOptions {
  secret: string;
  /** Where the browser reaches the API: the dashboard's origin (it proxies `/api`). */
  baseURL: string;
  /** Origins whose browser requests are trusted (sign-in, sign-out, and the control plane's own cross-site checks). */
  trustedOrigins: string[];
  /** Sign-in attempts allowed per client address per minute. */
  signInPerMinute: number;
  logger: Logger;
}

/**
 * Users, sessions and API keys, by better-auth on the control plane's database. Email and password only; nobody
 * signs themselves up (admins create users); sign-in is rate limited per client address, counted in Postgres so
 * every control plane shares the count. API keys are better-auth's: only a hash is stored, with the first
 * characters to tell them apart; their role lives in the key's metadata.
 */
export function createAuth(prisma: PrismaClient, opts: AuthOptions) {
  return betterAuth({
    appName: 'Keyflow',
    basePath: '/api/auth',
    baseURL: opts.baseURL,
    secret: opts.secret,
    trustedOrigins: opts.trustedOrigins,
    database: prismaAdapter(prisma, { provider: 'postgresql' }),
    emailAndPassword: { enabled: true, disableSignUp: true, minPasswordLength: PASSWORD_MIN, maxPasswordLength: PASSWORD_MAX },
    user: { additionalFields: { role: { type: 'string', required: true, defaultValue: 'viewer', input: false } } },
    rateLimit: {
      enabled: true,
      storage: 'database',
      window: 60,
      max: 600,
      customRules: { '/sign-in/email': { window: 60, max: opts.signInPerMinute } },
    },
    advanced: { ipAddress: { ipAddressHeaders: [CLIENT_IP_HEADER] } },
    logger: {
      level: 'warn',
      log: (level, message) => opts.logger[level]({ component: 'auth' }, message),
    },
    plugins: [
      apiKey({
        defaultPrefix: API_KEY_PREFIX,
        enableMetadata: true,
        maximumNameLength: 64,
        startingCharactersConfig: { shouldStore: true, charactersLength: API_KEY_PREFIX.length + 6 },
        keyExpiration: { minExpiresIn: 1, maxExpiresIn: API_KEY_MAX_DAYS },
        // Scripts poll: a key is not limited per day. Revoke a key that misbehaves.
        rateLimit: { enabled: false },
        // Last use is written after the answer, not before it.
        deferUpdates: true,
      }),
    ],
  });
}

export type Auth = ReturnType<typeof createAuth>;
