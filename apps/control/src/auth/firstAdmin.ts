import { passwordSchema } from '@keyflow/api';
import type { Logger } from 'pino';
import type { Accounts } from './accounts.ts';

type Made = Awaited<ReturnType<Accounts['ensureFirstAdmin']>>;

/**
 * Makes the first admin when none exists, from KEYFLOW_ADMIN_EMAIL / KEYFLOW_ADMIN_PASSWORD. Without a password,
 * only `npm run up` (`generate`) makes one up, and prints it to the terminal once; the control plane never writes a
 * password to its log, so it only warns that nobody can sign in yet.
 */
export async function firstAdmin(
  accounts: Accounts,
  env: { KEYFLOW_ADMIN_EMAIL?: string; KEYFLOW_ADMIN_PASSWORD?: string },
  logger: Logger,
  opts: { generate: boolean },
): Promise<Made> {
  if (env.KEYFLOW_ADMIN_PASSWORD !== undefined) {
    const ok = passwordSchema.safeParse(env.KEYFLOW_ADMIN_PASSWORD);
    if (!ok.success) throw new Error(`KEYFLOW_ADMIN_PASSWORD: ${ok.error.issues[0]!.message}`);
  }
  if (env.KEYFLOW_ADMIN_PASSWORD === undefined && !opts.generate) {
    if (!(await accounts.hasAdmin()))
      logger.warn(
        {},
        'no admin exists yet, so nobody can sign in: set KEYFLOW_ADMIN_EMAIL and KEYFLOW_ADMIN_PASSWORD and restart (or run `npm run up`)',
      );
    return { created: false };
  }
  const made = await accounts.ensureFirstAdmin({ email: env.KEYFLOW_ADMIN_EMAIL, password: env.KEYFLOW_ADMIN_PASSWORD });
  if (made.created) logger.warn({ email: made.email }, 'first admin created');
  return made;
}
