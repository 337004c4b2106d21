import type { AuditEvent } from '@keyflow/api';

/** The actions the control plane records, as the filter of the audit page offers them. */
export const AUDIT_ACTIONS = [
  'job.deploy',
  'job.rescale',
  'job.stop',
  'job.cancel',
  'checkpoint.trigger',
  'savepoint.trigger',
  'savepoint.delete',
  'pipeline.create',
  'pipeline.version',
  'pipeline.rename',
  'pipeline.delete',
  'apikey.create',
  'apikey.revoke',
  'user.create',
  'user.update',
  'user.delete',
] as const;

const named = (what: string, target: string | null) => (target ? `${what}: ${target}` : what);

const phrase = (what: string, target: string | null, rest = '') => `${what}${target ? ` ${target}` : ''}${rest}`;

/** The checkpoint a job was started from, by its number within its job; entries recorded before that was kept give the database's id. */
function fromCheckpoint(d: Record<string, unknown>): string {
  const cp = d.fromCheckpoint;
  if (typeof cp === 'object' && cp !== null && 'jobId' in cp && 'number' in cp && typeof cp.jobId === 'string')
    return ` from checkpoint #${String(cp.number)} of job ${cp.jobId.slice(0, 8)}`;
  return d.restoreFromCheckpointId !== undefined ? ` from the checkpoint with id ${String(d.restoreFromCheckpointId)}` : '';
}

/** What was done, in words ("Rescaled count 2 → 4"); who did it is said beside it. */
export function auditText(e: Pick<AuditEvent, 'action' | 'target' | 'details'>): string {
  const d = e.details ?? {};
  switch (e.action) {
    case 'job.deploy':
      return `Deployed${d.version !== undefined ? ` version ${d.version}` : ''}${fromCheckpoint(d)}`;
    case 'job.rescale': {
      const vertex = typeof d.vertexId === 'string' ? d.vertexId : e.target;
      if (!vertex || d.to === undefined) return 'Rescaled';
      return `Rescaled ${vertex} ${d.from === undefined || d.from === null ? '' : `${d.from} `}→ ${d.to}`;
    }
    case 'job.stop':
      return 'Stopped';
    case 'job.cancel':
      return 'Canceled';
    case 'checkpoint.trigger':
      return phrase('Checkpoint', e.target, ' triggered');
    case 'savepoint.trigger':
      return phrase('Savepoint', e.target, ' taken');
    case 'savepoint.delete':
      return phrase('Savepoint', e.target, ' deleted');
    case 'pipeline.create':
      return named('Pipeline created', e.target);
    case 'pipeline.version':
      return named('New pipeline version', e.target);
    case 'pipeline.rename':
      return named('Pipeline renamed', e.target);
    case 'pipeline.delete':
      return named('Pipeline deleted', e.target);
    case 'apikey.create':
      return named('API key created', e.target);
    case 'apikey.revoke':
      return named('API key revoked', e.target);
    case 'user.create':
      return named('User created', e.target);
    case 'user.update':
      return named('User changed', e.target);
    case 'user.delete':
      return named('User deleted', e.target);
    default:
      return e.target ? `${e.action} ${e.target}` : e.action;
  }
}

/** The details the words of `auditText` already say, per action. */
const SAID: Record<string, readonly string[]> = {
  'job.deploy': ['version', 'restoreFromCheckpointId', 'fromCheckpoint'],
  'job.rescale': ['vertexId', 'from', 'to'],
  'checkpoint.trigger': ['checkpointId', 'number'],
  'savepoint.trigger': ['checkpointId', 'number'],
  'savepoint.delete': ['checkpointId', 'number'],
};

const isChange = (v: unknown): v is { from: unknown; to: unknown } => typeof v === 'object' && v !== null && 'from' in v && 'to' in v;
const text = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

/** The other details, as `key: value` pairs; a change as `key: from → to`. */
export function auditDetails(e: Pick<AuditEvent, 'action' | 'details'>): string {
  const said = SAID[e.action] ?? [];
  return Object.entries(e.details ?? {})
    .filter(([k]) => !said.includes(k))
    .map(([k, v]) => `${k}: ${isChange(v) ? `${text(v.from)} → ${text(v.to)}` : text(v)}`)
    .join(' · ');
}
