import { randomUUID } from 'node:crypto';
import {
  ACTIVE_STATES,
  TOKEN_KINDS,
  type Connection as ConnectionDto,
  type ConnectionBody,
  type ConnectionTestBody,
  type ConnectionTestResult,
} from '@keyflow/api';
import type { ConnectionKind, GraphIssue } from '@keyflow/core';
import {
  connectionConfig,
  ConnectionError,
  connectionProfile,
  hasSecrets,
  loadConnection,
  openConnectionSecrets,
  sealConnectionSecrets,
  secretKey,
  SecretsError,
  type Connection as ConnectionRow,
  type ConnectionConfig,
  type ConnectionProfile,
  type ConnectionSecrets,
  type PrismaClient,
} from '@keyflow/db';
import type { Actor, AuditLog } from '../auth/audit.ts';
import { Refused } from '../jobs/refusal.ts';
import { connectionIssues, connectionRefs } from './connectionRefs.ts';
import { probeConnection } from './connectionProbe.ts';

/** What uses a connection: pipelines whose latest version names it, and active jobs whose version does. */
interface Usage {
  pipelines: Set<string>;
  jobs: { id: string; pipeline: string }[];
}

const NO_KEY =
  'KEYFLOW_SECRET_KEY is not set: secrets cannot be stored. Give the control plane and every worker the same KEYFLOW_SECRET_KEY ' +
  '(`npm run up` makes one in .keyflow/secret-key), or leave the password, token and secret headers empty';

/** A secret after a change: left out, the stored one; null or '' none. */
const secretAfter = (given: string | null | undefined, stored: string | undefined) => (given === undefined ? stored : given || undefined);

/** Two admins naming a connection alike at once: the database's unique name refuses the second. */
function nameTaken(err: unknown, name: string): never {
  if ((err as { code?: unknown }).code === 'P2002') throw new Refused('conflict', `a connection named '${name}' exists already`);
  throw err;
}

/**
 * Connection profiles: stored with their secrets sealed (KEYFLOW_SECRET_KEY), shown without them, tested, and checked
 * against the pipelines that name them. Every change is written to the audit trail, never a secret.
 */
export class Connections {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly audit: AuditLog,
    /** KEYFLOW_SECRET_KEY; without it, connections without secrets can still be stored. */
    private readonly secretKeyText: string | undefined,
  ) {}

  async list(): Promise<ConnectionDto[]> {
    const [rows, usage] = await Promise.all([this.prisma.connection.findMany({ orderBy: { name: 'asc' } }), this.usage()]);
    return rows.map((r) => connectionDto(r, usage.get(r.name)));
  }

  async get(id: string): Promise<ConnectionDto> {
    const row = await this.byId(id);
    return connectionDto(row, (await this.usage()).get(row.name));
  }

  async create(body: ConnectionBody, actor: Actor): Promise<ConnectionDto> {
    if (await this.prisma.connection.findUnique({ where: { name: body.name } }))
      throw new Refused('conflict', `a connection named '${body.name}' exists already`);
    const id = randomUUID();
    const secrets = nextSecrets({}, body);
    checkSecrets(body.kind, secrets);
    const row = await this.prisma.connection
      .create({
        data: {
          id,
          name: body.name,
          kind: body.kind,
          config: configOf(body, secrets) as object,
          secret: this.seal(id, secrets),
          createdBy: actor.label,
        },
      })
      .catch((err: unknown) => nameTaken(err, body.name));
    await this.audit.record(actor, { action: 'connection.create', target: row.name, details: { kind: row.kind, url: body.url } });
    return connectionDto(row, undefined);
  }

  /** Replaces what is not secret; a secret left out is kept, null or '' clears it. */
  async update(id: string, body: ConnectionBody, actor: Actor): Promise<ConnectionDto> {
    const row = await this.byId(id);
    if (body.name !== row.name && (await this.prisma.connection.findUnique({ where: { name: body.name } })))
      throw new Refused('conflict', `a connection named '${body.name}' exists already`);
    if (body.name !== row.name || body.kind !== row.kind) {
      const users = (await this.usage()).get(row.name);
      if (users) throw new Refused('conflict', `${inUse(row.name, users)}: a connection they name keeps its name and kind`);
    }
    const secrets = nextSecrets(this.storedSecrets(row, body), body);
    checkSecrets(body.kind, secrets);
    const config = configOf(body, secrets);
    const updated = await this.prisma.connection
      .update({ where: { id }, data: { name: body.name, kind: body.kind, config: config as object, secret: this.seal(id, secrets) } })
      .catch((err: unknown) => nameTaken(err, body.name));
    await this.audit.record(actor, {
      action: 'connection.update',
      target: updated.name,
      details: changes({ ...row, config: connectionConfig(row) }, { ...updated, config }, body),
    });
    return connectionDto(updated, (await this.usage()).get(updated.name));
  }

  async delete(id: string, actor: Actor): Promise<void> {
    const row = await this.byId(id);
    const users = (await this.usage()).get(row.name);
    if (users) throw new Refused('conflict', `${inUse(row.name, users)}: change them to another connection first`);
    await this.prisma.connection.delete({ where: { id } });
    await this.audit.record(actor, { action: 'connection.delete', target: row.name, details: { kind: row.kind } });
  }

  /** Whether the connection's host answers and takes its credentials (and has what `target` names); never a secret in the answer. */
  async test(id: string, target: ConnectionTestBody): Promise<ConnectionTestResult> {
    const row = await this.byId(id);
    try {
      return await probeConnection(connectionProfile(row, this.secretKeyText), target);
    } catch (err) {
      if (err instanceof ConnectionError) return { ok: false, message: err.message, latencyMs: 0 };
      throw err;
    }
  }

  /** What is wrong with the connections a pipeline graph names: none by that name, or one of another kind. */
  /** A connection as connectors use it, secrets opened (for sinks the control plane settles). */
  profile(name: string): Promise<ConnectionProfile> {
    return loadConnection(this.prisma, name, this.secretKeyText);
  }

  async issuesIn(graph: unknown): Promise<GraphIssue[]> {
    const names = [...new Set(connectionRefs(graph).map((r) => r.connection))];
    if (!names.length) return [];
    const rows = await this.prisma.connection.findMany({ where: { name: { in: names } }, select: { name: true, kind: true } });
    return connectionIssues(graph, new Map(rows.map((r) => [r.name, r.kind])));
  }

  private async byId(id: string): Promise<ConnectionRow> {
    const row = await this.prisma.connection.findUnique({ where: { id } });
    if (!row) throw new Refused('not-found', `no connection ${id}`);
    return row;
  }

  /** Who uses which connection, by its name. */
  private async usage(): Promise<Map<string, Usage>> {
    const [pipelines, jobs] = await Promise.all([
      this.prisma.pipeline.findMany({ select: { name: true, versions: { orderBy: { version: 'desc' }, take: 1, select: { graph: true } } } }),
      this.prisma.job.findMany({
        where: { state: { in: [...ACTIVE_STATES] } },
        select: { id: true, pipeline: { select: { name: true } }, pipelineVersion: { select: { graph: true } } },
      }),
    ]);
    const usage = new Map<string, Usage>();
    const of = (name: string) => usage.get(name) ?? usage.set(name, { pipelines: new Set(), jobs: [] }).get(name)!;
    for (const p of pipelines) for (const ref of connectionRefs(p.versions[0]?.graph)) of(ref.connection).pipelines.add(p.name);
    for (const j of jobs) {
      const names = new Set(connectionRefs(j.pipelineVersion.graph).map((r) => r.connection));
      for (const name of names) of(name).jobs.push({ id: j.id, pipeline: j.pipeline.name });
    }
    return usage;
  }

  /**
   * The stored secrets a change keeps. They are opened only when some are kept: clearing or replacing every one works
   * without the key (to get rid of secrets sealed with a key that is lost).
   */
  private storedSecrets(row: ConnectionRow, body: ConnectionBody): ConnectionSecrets {
    const config = connectionConfig(row);
    const keeps =
      (config.hasPassword && body.password === undefined) ||
      (config.hasToken && body.token === undefined) ||
      (config.secretHeaders ?? []).some((h) => body.secretHeaders?.[h] === undefined);
    if (!row.secret || !keeps) return {};
    try {
      return openConnectionSecrets(secretKey(this.secretKeyText), row);
    } catch (err) {
      if (!(err instanceof SecretsError)) throw err;
      if (err.code === 'no-key') throw new Refused('invalid', `${NO_KEY}: the stored ones cannot be kept without it`);
      throw new Refused(
        'invalid',
        `the stored secrets of connection '${row.name}' cannot be opened (${err.message}): give every secret again, or clear it`,
      );
    }
  }

  /** The `secret` column for `secrets`: none without secrets (no key needed), else sealed, or refused without a key. */
  private seal(id: string, secrets: ConnectionSecrets): Uint8Array<ArrayBuffer> | null {
    if (!hasSecrets(secrets)) return null;
    try {
      return sealConnectionSecrets(secretKey(this.secretKeyText), id, secrets);
    } catch (err) {
      if (!(err instanceof SecretsError)) throw err;
      throw new Refused('invalid', err.code === 'no-key' ? NO_KEY : `secrets cannot be stored: ${err.message}`);
    }
  }
}

/** The secrets after a change: each given one replaces the stored one, null or '' clears it, the others stay. */
function nextSecrets(stored: ConnectionSecrets, body: ConnectionBody): ConnectionSecrets {
  const headers = { ...stored.headers };
  for (const [name, value] of Object.entries(body.secretHeaders ?? {}))
    if (value) headers[name] = value;
    else delete headers[name];
  const password = secretAfter(body.password, stored.password);
  const token = secretAfter(body.token, stored.token);
  return {
    ...(password && { password }),
    ...(token && { token }),
    ...(Object.keys(headers).length > 0 && { headers }),
  };
}

/** A kept secret the connection's (new) kind does not take is refused, as a given one is by the body's schema. */
function checkSecrets(kind: ConnectionKind, secrets: ConnectionSecrets): void {
  if (secrets.token && !TOKEN_KINDS.includes(kind)) throw new Refused('invalid', `a ${kind} connection takes no token: clear it (token: null)`);
  if (secrets.headers && kind !== 'http') throw new Refused('invalid', `only an http connection sends headers: clear the secret headers`);
}

function configOf(body: ConnectionBody, secrets: ConnectionSecrets): ConnectionConfig {
  return {
    url: body.url,
    ...(body.username && { username: body.username }),
    ...(body.tls && Object.keys(body.tls).length > 0 && { tls: body.tls }),
    ...(body.headers && Object.keys(body.headers).length > 0 && { headers: body.headers }),
    ...(secrets.password && { hasPassword: true }),
    ...(secrets.token && { hasToken: true }),
    ...(secrets.headers && { secretHeaders: Object.keys(secrets.headers) }),
  };
}

/** What a change changed, for the audit trail: values that are not secret, and for secrets only whether they were set or cleared. */
type Stored = { name: string; kind: string; config: ConnectionConfig };
function changes(before: Stored, after: Stored, body: ConnectionBody): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const from = <T>(a: T, b: T) => ({ from: a, to: b });
  if (before.name !== after.name) out.name = from(before.name, after.name);
  if (before.kind !== after.kind) out.kind = from(before.kind, after.kind);
  if (before.config.url !== after.config.url) out.url = from(before.config.url, after.config.url);
  if ((before.config.username ?? null) !== (after.config.username ?? null))
    out.username = from(before.config.username ?? null, after.config.username ?? null);
  if (JSON.stringify(before.config.tls ?? null) !== JSON.stringify(after.config.tls ?? null)) out.tls = 'changed';
  if (JSON.stringify(before.config.headers ?? {}) !== JSON.stringify(after.config.headers ?? {})) out.headers = 'changed';
  for (const secret of ['password', 'token'] as const) if (body[secret] !== undefined) out[secret] = body[secret] ? 'set' : 'cleared';
  for (const [name, value] of Object.entries(body.secretHeaders ?? {})) out[`header ${name}`] = value ? 'set' : 'cleared';
  return out;
}

/** "connection 'x' is used by pipeline(s) a, b and by the active job(s) …". */
function inUse(name: string, usage: Usage): string {
  const parts = [];
  if (usage.pipelines.size) parts.push(`pipeline${usage.pipelines.size > 1 ? 's' : ''} ${[...usage.pipelines].map((p) => `'${p}'`).join(', ')}`);
  if (usage.jobs.length)
    parts.push(`${usage.jobs.length > 1 ? 'active jobs' : 'an active job'} ${usage.jobs.map((j) => `${j.id} (of '${j.pipeline}')`).join(', ')}`);
  return `connection '${name}' is used by ${parts.join(' and by ')}`;
}

function connectionDto(row: ConnectionRow, usage: Usage | undefined): ConnectionDto {
  const config = connectionConfig(row);
  return {
    id: row.id,
    name: row.name,
    kind: row.kind as ConnectionKind,
    url: config.url,
    username: config.username ?? null,
    tls: config.tls ?? null,
    headers: config.headers ?? {},
    secretHeaders: config.secretHeaders ?? [],
    hasPassword: !!config.hasPassword,
    hasToken: !!config.hasToken,
    createdBy: row.createdBy,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    usedBy: [...(usage?.pipelines ?? [])].sort(),
  };
}
