import type { Recovery as RecoveryDto } from '@keyflow/api';
import type { PrismaClient, Recovery } from '@keyflow/db';
import type { Emitter } from '../http/emitter.ts';

export function recoveryDto(r: Recovery): RecoveryDto {
  const ms = (from: Date | null, to: Date | null) => (from && to ? Math.max(0, to.getTime() - from.getTime()) : null);
  return {
    id: r.id,
    jobId: r.jobId,
    attempt: r.attempt,
    cause: r.cause,
    failedAt: r.failedAt?.toISOString() ?? null,
    detectedAt: r.detectedAt.toISOString(),
    checkpointId: r.checkpointId,
    checkpointNumber: r.checkpointNumber,
    runningAt: r.runningAt?.toISOString() ?? null,
    detectionMs: ms(r.failedAt, r.detectedAt),
    recoveryMs: ms(r.detectedAt, r.runningAt),
    restoreMs: r.restoreMs,
    keyGroupsRestored: r.keyGroupsRestored,
    bytesRestored: Number(r.bytesRestored),
    status: r.status,
    reason: r.reason,
  };
}

/** A failure as the control plane saw it: the attempt it recovers to (or ended), why, and when. */
interface Failure {
  attempt: number;
  cause: string;
  failedAt?: number;
  detectedAt: number;
}

/** The recoveries of jobs (DESIGN §7) as rows and `job:recovery` events: the job page's timeline of failures. */
export class RecoveryLog {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly emitter: Emitter,
  ) {}

  /** A recovery starts: the one still restoring (its attempt failed before running) is superseded by it. */
  async started(jobId: string, data: Failure & { checkpoint?: { id: number; number: number } }): Promise<void> {
    await this.close(jobId, 'SUPERSEDED', `attempt ${data.attempt - 1} failed before it ran: ${data.cause}`);
    await this.create(jobId, data, { checkpointId: data.checkpoint?.id ?? null, checkpointNumber: data.checkpoint?.number ?? null });
  }

  /** Every subtask of the recovery's attempt runs again. */
  async running(jobId: string, attempt: number, restored: { keyGroups: number; bytes: number; ms: number }): Promise<void> {
    const row = await this.prisma.recovery.findFirst({ where: { jobId, attempt, status: 'RESTORING' }, orderBy: { id: 'desc' } });
    if (!row) return;
    const done = await this.prisma.recovery.update({
      where: { id: row.id },
      data: {
        status: 'RUNNING',
        runningAt: new Date(),
        restoreMs: restored.ms,
        keyGroupsRestored: restored.keyGroups,
        bytesRestored: BigInt(restored.bytes),
      },
    });
    this.emitter.emit(jobId, 'job:recovery', recoveryDto(done));
  }

  /** The job gave up (FAILED) or another recovery took over (SUPERSEDED): a recovery still restoring ends so. */
  async close(jobId: string, status: 'FAILED' | 'SUPERSEDED', reason: string): Promise<void> {
    const open = await this.prisma.recovery.findMany({ where: { jobId, status: 'RESTORING' } });
    for (const r of open) {
      const row = await this.prisma.recovery.update({ where: { id: r.id }, data: { status, reason } });
      this.emitter.emit(jobId, 'job:recovery', recoveryDto(row));
    }
  }

  /** A failure the job did not recover from (its restarts were used up): on the timeline all the same. */
  async gaveUp(jobId: string, data: Failure & { reason: string }): Promise<void> {
    await this.close(jobId, 'FAILED', data.reason);
    await this.create(jobId, data, { status: 'FAILED', reason: data.reason });
  }

  private async create(
    jobId: string,
    f: Failure,
    extra: Partial<Pick<Recovery, 'checkpointId' | 'checkpointNumber' | 'status' | 'reason'>>,
  ): Promise<void> {
    const row = await this.prisma.recovery.create({
      data: {
        jobId,
        attempt: f.attempt,
        cause: f.cause,
        // Never after its detection: a heartbeat stamped by a clock a little ahead would say so.
        failedAt: f.failedAt !== undefined ? new Date(Math.min(f.failedAt, f.detectedAt)) : null,
        detectedAt: new Date(f.detectedAt),
        ...extra,
      },
    });
    this.emitter.emit(jobId, 'job:recovery', recoveryDto(row));
  }

  async list(jobId: string): Promise<RecoveryDto[]> {
    const rows = await this.prisma.recovery.findMany({ where: { jobId }, orderBy: { id: 'desc' }, take: 200 });
    return rows.map(recoveryDto);
  }
}
