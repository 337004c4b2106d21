import { randomBytes } from 'node:crypto';
import {
  roleSchema,
  type ApiKey,
  type CreateApiKeyBody,
  type CreateUserBody,
  type Me,
  type Role,
  type UpdateUserBody,
  type User,
} from '@keyflow/api';
import type { PrismaClient } from '@keyflow/db';
import { fromNodeHeaders } from 'better-auth/node';
import { Refused } from '../jobs/refusal.ts';
import type { Auth } from './auth.ts';
import { SYSTEM_ACTOR, type Actor, type AuditLog } from './audit.ts';

/** Whom a request is from, once its credentials are checked. */
export interface Principal extends Actor {
  kind: 'user' | 'api-key';
  userId: string;
  email: string;
  name: string;
  role: Role;
  apiKey: { id: string; name: string } | null;
}

/** Why credentials were refused; said in the 401 (never echoing the credentials). */
export class BadCredentials extends Error {}

type NodeHeaders = Record<string, string | string[] | undefined>;

const roleOf = (value: unknown): Role => roleSchema.catch('viewer').parse(value);
const lower = (r: Role, s: Role): Role => (ROLE_ORDER.indexOf(r) <= ROLE_ORDER.indexOf(s) ? r : s);
const ROLE_ORDER: Role[] = ['viewer', 'operator', 'admin'];

/** Users and API keys: who a request is from, and the admin's changes to both (each written to the audit trail). */
export class Accounts {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly auth: Auth,
    private readonly audit: AuditLog,
    /** Called when a user's sessions and keys end (deleted, or a password reset): their open sockets are closed. */
    private readonly onRevoked: (userId: string) => void = () => {},
  ) {}

  /**
   * The principal behind a request's headers: an API key in `Authorization: Bearer …` (never falling back to the
   * cookie when the key is bad), else the session cookie; `null` when there are no credentials at all.
   */
  async resolve(headers: NodeHeaders): Promise<Principal | null> {
    const authorization = typeof headers.authorization === 'string' ? headers.authorization : undefined;
    if (authorization !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (!m) throw new BadCredentials('the Authorization header is not "Bearer <API key>"');
      return this.byKey(m[1]!);
    }
    if (!headers.cookie) return null;
    const session = await this.auth.api.getSession({ headers: fromNodeHeaders(headers) });
    if (!session) return null;
    const u = session.user as { id: string; email: string; name: string; role?: unknown };
    return { kind: 'user', userId: u.id, email: u.email, name: u.name, role: roleOf(u.role), apiKey: null, label: u.email };
  }

  private async byKey(key: string): Promise<Principal> {
    const result = await this.auth.api.verifyApiKey({ body: { key } });
    if (!result.valid || !result.key)
      throw new BadCredentials(
        result.error?.code === 'KEY_EXPIRED' ? 'the API key has expired' : 'the API key is not valid (revoked, or never issued)',
      );
    const owner = await this.prisma.user.findUnique({ where: { id: result.key.referenceId } });
    if (!owner) throw new BadCredentials('the API key belongs to a user who no longer exists');
    const metadata = typeof result.key.metadata === 'string' ? JSON.parse(result.key.metadata) : result.key.metadata;
    const name = result.key.name ?? result.key.id;
    return {
      kind: 'api-key',
      userId: owner.id,
      email: owner.email,
      name: owner.name,
      // A key never does more than the admin who made it may do now.
      role: lower(roleOf(metadata?.role), roleOf(owner.role)),
      apiKey: { id: result.key.id, name },
      label: `${owner.email} (key ${name})`,
    };
  }

  me(p: Principal): Me {
    return {
      user: { id: p.userId, email: p.email, name: p.name },
      role: p.role,
      via: p.kind === 'api-key' ? 'api-key' : 'session',
      apiKey: p.apiKey,
    };
  }

  async listUsers(): Promise<User[]> {
    const rows = await this.prisma.user.findMany({ orderBy: { createdAt: 'asc' } });
    return rows.map(userDto);
  }

  async createUser(body: CreateUserBody, actor: Actor): Promise<User> {
    const email = body.email.toLowerCase();
    if (await this.prisma.user.findUnique({ where: { email } })) throw new Refused('conflict', `a user ${email} exists already`);
    const ctx = await this.auth.$context;
    const user = await ctx.internalAdapter.createUser(
      { email, name: body.name ?? email.split('@')[0]!, emailVerified: true, role: body.role },
      { method: 'admin' },
    );
    await ctx.internalAdapter.linkAccount({
      userId: user.id,
      providerId: 'credential',
      accountId: user.id,
      password: await ctx.password.hash(body.password),
    });
    await this.audit.record(actor, { action: 'user.create', target: email, details: { role: body.role } });
    return userDto(await this.prisma.user.findUniqueOrThrow({ where: { id: user.id } }));
  }

  async updateUser(id: string, body: UpdateUserBody, actor: Actor): Promise<User> {
    const user = await this.userById(id);
    if (body.role && body.role !== 'admin' && user.role === 'admin') {
      if (actor.userId === id) throw new Refused('conflict', 'you cannot take the admin role from yourself: another admin can');
      await this.keepAnAdmin(id);
    }
    if (body.role || body.name)
      await this.prisma.user.update({ where: { id }, data: { ...(body.role && { role: body.role }), ...(body.name && { name: body.name }) } });
    if (body.password) {
      const ctx = await this.auth.$context;
      await ctx.internalAdapter.updatePassword(id, await ctx.password.hash(body.password));
      // A reset password signs the user out everywhere.
      await ctx.internalAdapter.deleteUserSessions(id);
      this.onRevoked(id);
    }
    const changes: Record<string, unknown> = {};
    if (body.role && body.role !== user.role) changes.role = { from: user.role, to: body.role };
    if (body.name && body.name !== user.name) changes.name = { from: user.name, to: body.name };
    if (body.password) changes.passwordReset = true;
    await this.audit.record(actor, { action: 'user.update', target: user.email, details: changes });
    return userDto(await this.prisma.user.findUniqueOrThrow({ where: { id } }));
  }

  async deleteUser(id: string, actor: Actor): Promise<void> {
    const user = await this.userById(id);
    if (actor.userId === id) throw new Refused('conflict', 'you cannot delete yourself: another admin can');
    if (user.role === 'admin') await this.keepAnAdmin(id);
    // Their keys go with them (sessions and accounts by cascade).
    await this.prisma.$transaction([this.prisma.apikey.deleteMany({ where: { referenceId: id } }), this.prisma.user.delete({ where: { id } })]);
    this.onRevoked(id);
    await this.audit.record(actor, { action: 'user.delete', target: user.email, details: { role: user.role } });
  }

  async listApiKeys(): Promise<ApiKey[]> {
    const rows = await this.prisma.apikey.findMany({ orderBy: { createdAt: 'desc' } });
    const owners = new Map((await this.prisma.user.findMany({ where: { id: { in: rows.map((r) => r.referenceId) } } })).map((u) => [u.id, u.email]));
    return rows.map((r) => keyDto(r, owners.get(r.referenceId) ?? '(deleted user)'));
  }

  /** A key for `actor`'s user, with a role no higher than theirs: the answer holds the key, once. */
  async createApiKey(body: CreateApiKeyBody, actor: Principal): Promise<ApiKey & { key: string }> {
    if (lower(body.role, actor.role) !== body.role)
      throw new Refused('forbidden', `you may not make a key with the ${body.role} role: you are ${actor.role}`);
    const created = await this.auth.api.createApiKey({
      body: { name: body.name, userId: actor.userId, expiresIn: body.expiresInDays * 86_400, metadata: { role: body.role }, rateLimitEnabled: false },
    });
    await this.audit.record(actor, {
      action: 'apikey.create',
      target: body.name,
      details: { role: body.role, expiresInDays: body.expiresInDays, start: created.start },
    });
    const row = await this.prisma.apikey.findUniqueOrThrow({ where: { id: created.id } });
    return { ...keyDto(row, actor.email), key: created.key };
  }

  async revokeApiKey(id: string, actor: Actor): Promise<void> {
    const row = await this.prisma.apikey.findUnique({ where: { id } });
    if (!row) throw new Refused('not-found', `no API key ${id}`);
    await this.prisma.apikey.delete({ where: { id } });
    await this.audit.record(actor, { action: 'apikey.revoke', target: row.name ?? id, details: { start: row.start } });
  }

  /**
   * The first admin, when none exists: from `email` and `password` if given, else `admin@keyflow.local` with a
   * generated password, which the caller shows once. An existing user with that email becomes the admin.
   */
  async ensureFirstAdmin(opts: {
    email?: string;
    password?: string;
  }): Promise<{ created: false } | { created: true; email: string; password: string; generated: boolean }> {
    if (await this.hasAdmin()) return { created: false };
    const email = (opts.email ?? 'admin@keyflow.local').toLowerCase();
    const password = opts.password ?? randomBytes(18).toString('base64url');
    const existing = await this.prisma.user.findUnique({ where: { email } });
    try {
      if (existing) await this.updateUser(existing.id, { role: 'admin', password }, SYSTEM_ACTOR);
      else await this.createUser({ email, password, role: 'admin' }, SYSTEM_ACTOR);
    } catch (err) {
      // Another control plane made the first admin at the same moment.
      if (err instanceof Refused && (await this.hasAdmin())) return { created: false };
      throw err;
    }
    return { created: true, email, password, generated: opts.password === undefined };
  }

  async hasAdmin(): Promise<boolean> {
    return (await this.prisma.user.count({ where: { role: 'admin' } })) > 0;
  }

  private async userById(id: string) {
    const user = await this.prisma.user.findUnique({ where: { id } });
    if (!user) throw new Refused('not-found', `no user ${id}`);
    return user;
  }

  private async keepAnAdmin(leaving: string): Promise<void> {
    const others = await this.prisma.user.count({ where: { role: 'admin', id: { not: leaving } } });
    if (others === 0) throw new Refused('conflict', 'this is the last admin: make another user admin first');
  }
}

function userDto(u: { id: string; email: string; name: string; role: string; createdAt: Date }): User {
  return { id: u.id, email: u.email, name: u.name, role: roleOf(u.role), createdAt: u.createdAt.toISOString() };
}

function keyDto(
  r: {
    id: string;
    name: string | null;
    start: string | null;
    metadata: string | null;
    createdAt: Date;
    expiresAt: Date | null;
    lastRequest: Date | null;
  },
  createdBy: string,
): ApiKey {
  const metadata = r.metadata ? (JSON.parse(r.metadata) as { role?: unknown }) : {};
  const expiresAt = r.expiresAt ?? new Date(8.64e15);
  return {
    id: r.id,
    name: r.name ?? r.id,
    start: r.start ?? '',
    role: roleOf(metadata.role),
    createdBy,
    createdAt: r.createdAt.toISOString(),
    expiresAt: expiresAt.toISOString(),
    lastUsedAt: r.lastRequest?.toISOString() ?? null,
    expired: expiresAt.getTime() <= Date.now(),
  };
}
