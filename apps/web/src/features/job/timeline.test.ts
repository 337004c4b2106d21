import type { AuditEvent, JobEvent } from '@keyflow/api';
import { describe, expect, it } from 'vitest';
import { timeline } from './timeline';

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
const state = (s: number, toState: JobEvent['toState']): JobEvent => ({ at: at(s), attempt: 1, fromState: null, toState, reason: null });
const audit = (id: number, s: number, action: string): AuditEvent => ({
  id,
  at: at(s),
  actorKind: 'user',
  actorLabel: 'alice@example.com',
  action,
  jobId: null,
  pipelineId: null,
  target: null,
  details: null,
});
const label = (e: ReturnType<typeof timeline>[number]) => ('audit' in e ? e.audit.action : e.state.toState);

describe('the lifecycle timeline', () => {
  it('interleaves transitions and audit entries by time, newest first; an action sits under the transition it caused', () => {
    const events = [state(1, 'CREATED'), state(1, 'SCHEDULING'), state(2, 'RUNNING'), state(9, 'STOPPING'), state(10, 'STOPPED')];
    const trail = [audit(1, 1, 'job.deploy'), audit(2, 5, 'job.rescale'), audit(3, 9, 'job.stop')];
    expect(timeline(events, trail).map(label)).toEqual([
      'STOPPED',
      'STOPPING',
      'job.stop',
      'job.rescale',
      'RUNNING',
      'SCHEDULING',
      'CREATED',
      'job.deploy',
    ]);
  });

  it('is empty when nothing happened', () => {
    expect(timeline([], [])).toEqual([]);
  });
});
