import type { Checkpoint } from '@keyflow/api';
import { describe, expect, it } from 'vitest';
import { checkpointName, retainedCheckpoints } from './savepoints';

const checkpoint = (number: number, kind: Checkpoint['kind'], status: Checkpoint['status']): Checkpoint => ({
  id: 100 + number,
  jobId: 'j',
  number,
  attempt: 1,
  kind,
  status,
  acknowledged: 0,
  totalSubtasks: 2,
  triggeredAt: new Date(number * 1000).toISOString(),
  completedAt: null,
  durationMs: null,
  bytes: 0,
  alignmentMs: null,
  failureReason: null,
});

describe('what a new job can start from', () => {
  it('is every completed checkpoint the server still lists, and savepoints being taken, newest first', () => {
    const list = [
      checkpoint(3, 'PERIODIC', 'COMPLETED'),
      checkpoint(7, 'SAVEPOINT', 'PENDING'),
      checkpoint(6, 'PERIODIC', 'PENDING'),
      checkpoint(5, 'SAVEPOINT', 'FAILED'),
      checkpoint(4, 'RESCALE', 'COMPLETED'),
      checkpoint(2, 'SAVEPOINT', 'COMPLETED'),
      checkpoint(1, 'PERIODIC', 'FAILED'),
    ];
    expect(retainedCheckpoints(list).map((c) => `${c.number} ${c.kind} ${c.status}`)).toEqual([
      '7 SAVEPOINT PENDING',
      '4 RESCALE COMPLETED',
      '3 PERIODIC COMPLETED',
      '2 SAVEPOINT COMPLETED',
    ]);
  });

  it('names savepoints as such', () => {
    expect(checkpointName(checkpoint(2, 'SAVEPOINT', 'COMPLETED'))).toBe('savepoint #2');
    expect(checkpointName(checkpoint(4, 'RESCALE', 'COMPLETED'))).toBe('checkpoint #4');
  });
});
