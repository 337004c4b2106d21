import type { AuditEvent } from '@keyflow/api';
import type { PrismaClient } from '@keyflow/db';
import type { Logger } from 'pino';

/** Who acted: a signed-in user, an API key (on behalf of the admin who made it), or Keyflow itself at first run. */
export interface Actor {
  kind: 'user' | 'api-key' | 'system';
  /** The user (for a key: its owner); none for the system. */
  userId: string | null;
  /** As the audit trail shows it: `alice@example.com`, `alice@example.com (key deploy-bot)`, `keyflow`. */
  label: string;
}

export const SYSTEM_ACTOR: Actor = { kind: 'system', userId: null, label: 'keyflow' };

export interface AuditEntry {
  action: string;
  jobId?: string | null;
  pipelineId?: string | null;
  target?: string | null;
  details?: Record<string, unknown>;
}

/** The audit trail, in Postgres: written after an action succeeded; a failed write is logged, never fails the action. */
export class AuditLog {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly logger: Logger,
  ) {}

  async record(actor: Actor, entry: AuditEntry): Promise<void> {
    try {
      await this.prisma.auditEvent.create({
        data: {
          actorKind: actor.kind,
          actorId: actor.userId,
          actorLabel: actor.label,
          action: entry.action,
          jobId: entry.jobId ?? null,
          pipelineId: entry.pipelineId ?? null,
          target: entry.target ?? null,
          details: (entry.details ?? undefined) as object | undefined,
        },
      });
    } catch (err) {
      this.logger.error({ action: entry.action, actor: actor.label, error: (err as Error).message }, 'could not write the audit trail');
    }
  }

  async list(query: { jobId?: string; action?: string; before?: number; limit: number }): Promise<AuditEvent[]> {
    const rows = await this.prisma.auditEvent.findMany({
      where: {
        ...(query.jobId ? { jobId: query.jobId } : {}),
        ...(query.action ? { action: query.action } : {}),
        ...(query.before ? { id: { lt: query.before } } : {}),
      },
      orderBy: { id: 'desc' },
      take: query.limit,
    });
    return rows.map(auditDto);
  }

  /** A job's entries, oldest first (its lifecycle timeline). */
  async forJob(jobId: string): Promise<AuditEvent[]> {
    const rows = await this.prisma.auditEvent.findMany({ where: { jobId }, orderBy: { id: 'asc' }, take: 500 });
    return rows.map(auditDto);
  }
}

function auditDto(r: {
  id: number;
  at: Date;
  actorKind: string;
  actorLabel: string;
  action: string;
  jobId: string | null;
  pipelineId: string | null;
  target: string | null;
  details: unknown;
}): AuditEvent {
  return {
    id: r.id,
    at: r.at.toISOString(),
    actorKind: r.actorKind as AuditEvent['actorKind'],
    actorLabel: r.actorLabel,
    action: r.action,
    jobId: r.jobId,
    pipelineId: r.pipelineId,
    target: r.target,
    details: (r.details as Record<string, unknown> | null) ?? null,
  };
}
