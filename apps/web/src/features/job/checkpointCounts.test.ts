import type { Checkpoint } from '@keyflow/api';
import { describe, expect, it } from 'vitest';
import { checkpointCounts } from './checkpointCounts';

type Row = Pick<Checkpoint, 'number' | 'status'>;
const rows = (spec: Record<number, Checkpoint['status']>): Row[] =>
  Object.entries(spec)
    .map(([number, status]) => ({ number: Number(number), status }))
    .sort((a, b) => b.number - a.number);

describe('checkpoint counts', () => {
  it('are all zero before the first checkpoint', () => {
    expect(checkpointCounts([])).toEqual({ triggered: 0, inProgress: 0, completed: 0, failed: 0, unlisted: 0 });
  });

  it('count every checkpoint, also those retention let go (DISCARDED)', () => {
    // The case: #4 is the latest, and #1 is no longer retained.
    expect(checkpointCounts(rows({ 1: 'DISCARDED', 2: 'COMPLETED', 3: 'COMPLETED', 4: 'PENDING' }))).toEqual({
      triggered: 4,
      inProgress: 1,
      completed: 3,
      failed: 0,
      unlisted: 0,
    });
  });

  it('count a savepoint deleted by hand (a gap in the numbers) as completed', () => {
    expect(checkpointCounts(rows({ 1: 'DISCARDED', 3: 'FAILED', 4: 'COMPLETED' }))).toEqual({
      triggered: 4,
      inProgress: 0,
      completed: 3,
      failed: 1,
      unlisted: 0,
    });
    expect(checkpointCounts(rows({ 2: 'COMPLETED' })).completed).toBe(2);
  });

  it('leave out the checkpoints older than a full history lists, whose outcome is not known', () => {
    const history = Array.from({ length: 100 }, (_, i) => ({ number: 150 - i, status: i === 5 ? ('FAILED' as const) : ('COMPLETED' as const) }));
    expect(checkpointCounts(history)).toEqual({ triggered: 150, inProgress: 0, completed: 99, failed: 1, unlisted: 50 });
  });
});
