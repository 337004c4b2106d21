import { z } from 'zod';

/**
 * Who may do what. A **viewer** reads everything but secrets; an **operator** also deploys, rescales, checkpoints,
 * stops and cancels jobs, takes and deletes savepoints, edits pipelines and tests connections; an **admin** also manages
 * users, roles, API keys and connections, and reads the audit trail.
 */
export const roleSchema = z.enum(['viewer', 'operator', 'admin']);
export type Role = z.infer<typeof roleSchema>;
export const ROLES = roleSchema.options;

const rank: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
/** Whether `role` may do what `needed` may. */
export const mayAct = (role: Role, needed: Role) => rank[role] >= rank[needed];

/** Password rules: long enough to resist guessing (NIST SP 800-63B asks for at least 8; Keyflow asks 12), no composition rules. */
export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 128;
export const passwordSchema = z
  .string()
  .min(PASSWORD_MIN, `a password has at least ${PASSWORD_MIN} characters`)
  .max(PASSWORD_MAX, `a password has at most ${PASSWORD_MAX} characters`)
  .refine((p) => p.trim().length === p.length, 'a password does not start or end with spaces');

const email = z.email().max(254);

/** Who the request is from: a signed-in user, or an API key (with its own role) on behalf of the admin who made it. */
export const meSchema = z.object({
  user: z.object({ id: z.string(), email: z.string(), name: z.string() }),
  role: roleSchema,
  via: z.enum(['session', 'api-key']),
  apiKey: z.object({ id: z.string(), name: z.string() }).nullable(),
});
export type Me = z.infer<typeof meSchema>;

export const userSchema = z.object({
  id: z.string(),
  email: z.string(),
  name: z.string(),
  role: roleSchema,
  createdAt: z.string(),
});
export type User = z.infer<typeof userSchema>;

export const createUserBody = z
  .object({ email, name: z.string().trim().min(1).max(100).optional(), password: passwordSchema, role: roleSchema })
  .strict();
export type CreateUserBody = z.infer<typeof createUserBody>;
export const updateUserBody = z
  .object({ role: roleSchema.optional(), password: passwordSchema.optional(), name: z.string().trim().min(1).max(100).optional() })
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'change at least one of role, password, name');
export type UpdateUserBody = z.infer<typeof updateUserBody>;
export const userIdParams = z.object({ id: z.string().min(1).max(64) }).strict();

/** Keys live at most this long: a key that never expires is a key nobody remembers to revoke. */
export const API_KEY_MAX_DAYS = 365;
export const API_KEY_PREFIX = 'kf_';

export const apiKeySchema = z.object({
  id: z.string(),
  name: z.string(),
  /** The first characters of the key (its prefix included), to tell keys apart; the rest is never shown again. */
  start: z.string(),
  role: roleSchema,
  /** The admin who made it. */
  createdBy: z.string(),
  createdAt: z.string(),
  expiresAt: z.string(),
  lastUsedAt: z.string().nullable(),
  expired: z.boolean(),
});
export type ApiKey = z.infer<typeof apiKeySchema>;
/** A key just made: the only answer that holds the key itself. */
export const createdApiKeySchema = apiKeySchema.extend({ key: z.string() });
export type CreatedApiKey = z.infer<typeof createdApiKeySchema>;
export const createApiKeyBody = z
  .object({
    name: z.string().trim().min(1).max(64),
    role: roleSchema,
    expiresInDays: z.number().int().min(1).max(API_KEY_MAX_DAYS),
  })
  .strict();
export type CreateApiKeyBody = z.infer<typeof createApiKeyBody>;

/**
 * One entry of the audit trail. Actions: `job.deploy`, `job.rescale` (details: vertex, from, to), `job.stop`,
 * `job.cancel`, `checkpoint.trigger`, `savepoint.trigger`, `savepoint.delete`, `pipeline.create`, `pipeline.version`,
 * `pipeline.rename`, `pipeline.delete`, `apikey.create`, `apikey.revoke`, `user.create`, `user.update`, `user.delete`,
 * `connection.create`, `connection.update` (details: what changed, never a secret), `connection.delete`.
 */
export const auditEventSchema = z.object({
  id: z.number(),
  at: z.string(),
  actorKind: z.enum(['user', 'api-key', 'system']),
  /** The actor's email then; for a key: `<owner email> (key <name>)`. */
  actorLabel: z.string(),
  action: z.string(),
  jobId: z.string().nullable(),
  pipelineId: z.string().nullable(),
  target: z.string().nullable(),
  details: z.record(z.string(), z.unknown()).nullable(),
});
export type AuditEvent = z.infer<typeof auditEventSchema>;
export const auditQuery = z
  .object({
    jobId: z.uuid().optional(),
    action: z.string().max(64).optional(),
    /** Entries older than this id (the next page). */
    before: z.coerce.number().int().positive().optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
  })
  .strict();
export type AuditQuery = z.input<typeof auditQuery>;
