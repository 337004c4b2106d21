import type { AuditEvent } from '@keyflow/api';
import { describe, expect, it } from 'vitest';
import { auditDetails, auditText } from './auditText';

const entry = (action: string, details: AuditEvent['details'] = null, target: string | null = null) => ({ action, details, target });

describe('audit entries in words', () => {
  it.each([
    [entry('job.rescale', { vertexId: 'count', from: 2, to: 4 }), 'Rescaled count 2 → 4'],
    [entry('job.rescale', null), 'Rescaled'],
    [entry('job.rescale', { vertexId: 'count', from: null, to: 3 }, 'count'), 'Rescaled count → 3'],
    [entry('job.deploy'), 'Deployed'],
    [
      entry('job.deploy', { version: 2, restoreFromCheckpointId: 41, fromCheckpoint: { jobId: '22222222-aaaa-4bbb-8ccc-dddddddddddd', number: 7 } }),
      'Deployed version 2 from checkpoint #7 of job 22222222',
    ],
    [entry('job.deploy', { version: 2, restoreFromCheckpointId: 41 }), 'Deployed version 2 from the checkpoint with id 41'],
    [entry('savepoint.trigger', { checkpointId: 9, number: 4 }, '#4'), 'Savepoint #4 taken'],
    [entry('savepoint.delete', null, '#4'), 'Savepoint #4 deleted'],
    [entry('checkpoint.trigger', null, '#7'), 'Checkpoint #7 triggered'],
    [entry('job.stop'), 'Stopped'],
    [entry('job.cancel'), 'Canceled'],
    [entry('checkpoint.trigger'), 'Checkpoint triggered'],
    [entry('savepoint.trigger'), 'Savepoint taken'],
    [entry('apikey.create', null, 'ci-deployer'), 'API key created: ci-deployer'],
    [entry('user.delete'), 'User deleted'],
    [entry('something.new', null, 'x'), 'something.new x'],
  ])('%j reads "%s"', (e, text) => {
    expect(auditText(e)).toBe(text);
  });

  it('lists the details the words leave out, as pairs', () => {
    expect(auditDetails(entry('user.update', { role: { from: 'viewer', to: 'operator' }, passwordReset: true }))).toBe(
      'role: viewer → operator · passwordReset: true',
    );
    expect(auditDetails(entry('pipeline.rename', { from: 'old-name' }))).toBe('from: old-name');
    expect(auditDetails(entry('job.rescale', { vertexId: 'count', from: 1, to: 2 }))).toBe('');
    expect(auditDetails(entry('job.stop'))).toBe('');
    expect(
      auditDetails(entry('job.deploy', { restoreFromCheckpointId: 41, fromCheckpoint: { jobId: 'a', number: 7 }, parallelism: { count: 2 } })),
    ).toBe('parallelism: {"count":2}');
    expect(auditDetails(entry('savepoint.trigger', { checkpointId: 9, number: 4 }))).toBe('');
    expect(auditDetails(entry('apikey.create', { role: 'operator', expiresInDays: 30, start: 'kf_abcdef' }))).toBe(
      'role: operator · expiresInDays: 30 · start: kf_abcdef',
    );
  });
});
