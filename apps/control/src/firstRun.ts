// The first run's accounts, for `npm run up`: the first admin when none exists (KEYFLOW_ADMIN_EMAIL /
// KEYFLOW_ADMIN_PASSWORD, or admin@keyflow.local with a generated password), and an operator API key for this
// checkout's command line (`npm run watch`, the README's curl examples) unless the key in KEYFLOW_KEY_FILE still
// works. Prints one JSON line: { admin: { created, email?, password?, generated? }, apiKey?: string }.
import { existsSync, readFileSync } from 'node:fs';
import { createPrisma } from '@keyflow/db';
import { pino } from 'pino';
import { Accounts } from './auth/accounts.ts';
import { AuditLog, SYSTEM_ACTOR } from './auth/audit.ts';
import { createAuth } from './auth/auth.ts';
import { firstAdmin } from './auth/firstAdmin.ts';

const { DATABASE_URL, KEYFLOW_AUTH_SECRET, KEYFLOW_DASHBOARD_URL = 'http://127.0.0.1:3000' } = process.env;
if (!DATABASE_URL || !KEYFLOW_AUTH_SECRET) {
  console.error('Set DATABASE_URL and KEYFLOW_AUTH_SECRET');
  process.exit(1);
}
const logger = pino({ level: 'warn' }, pino.destination(2));
const prisma = createPrisma(DATABASE_URL);
const auth = createAuth(prisma, { secret: KEYFLOW_AUTH_SECRET, baseURL: KEYFLOW_DASHBOARD_URL, trustedOrigins: [], signInPerMinute: 10, logger });
const accounts = new Accounts(prisma, auth, new AuditLog(prisma, logger));
try {
  const admin = await firstAdmin(
    accounts,
    { KEYFLOW_ADMIN_EMAIL: process.env.KEYFLOW_ADMIN_EMAIL || undefined, KEYFLOW_ADMIN_PASSWORD: process.env.KEYFLOW_ADMIN_PASSWORD || undefined },
    pino({ level: 'silent' }),
    { generate: true },
  );
  const keyFile = process.env.KEYFLOW_KEY_FILE;
  const stored = keyFile && existsSync(keyFile) ? readFileSync(keyFile, 'utf8').trim() : '';
  const works = stored !== '' && (await auth.api.verifyApiKey({ body: { key: stored } })).valid;
  let apiKey: string | undefined;
  if (!works) {
    const owner = await prisma.user.findFirstOrThrow({ where: { role: 'admin' }, orderBy: { createdAt: 'asc' } });
    const principal = {
      kind: 'user',
      userId: owner.id,
      email: owner.email,
      name: owner.name,
      role: 'admin',
      apiKey: null,
      label: SYSTEM_ACTOR.label,
    } as const;
    apiKey = (await accounts.createApiKey({ name: 'this checkout (npm run up)', role: 'operator', expiresInDays: 365 }, principal)).key;
  }
  console.log(JSON.stringify({ admin, ...(apiKey && { apiKey }) }));
} finally {
  await prisma.$disconnect();
}
