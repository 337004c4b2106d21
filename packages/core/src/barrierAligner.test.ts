import { describe, expect, it } from 'vitest';
import { BarrierAligner, type AlignmentResult } from './barrierAligner.ts';

/** One input at a clock time (a barrier or an end marker), what it should yield, and which channels are then blocked. */
type Step =
  | { at: number; barrier: [channel: string, checkpoint: number]; expect: AlignmentResult['kind'] | AlignmentResult; blocked?: string[] }
  | { at: number; end: string; expect: AlignmentResult['kind'] | AlignmentResult; blocked?: string[] };

const waiting = 'waiting' as const;
const ignored = 'ignored' as const;
const aligned = (checkpoint: number, alignmentMs: number): AlignmentResult => ({ kind: 'aligned', checkpoint, alignmentMs });

function run(channels: string[], steps: Step[]): BarrierAligner {
  const a = new BarrierAligner(channels);
  steps.forEach((s, i) => {
    const got = 'barrier' in s ? a.onBarrier(s.barrier[0], s.barrier[1], s.at) : a.onEnd(s.end, s.at);
    const where = `step ${i} (${JSON.stringify(s)})`;
    if (typeof s.expect === 'string') expect(got.kind, where).toBe(s.expect);
    else expect(got, where).toEqual(s.expect);
    if (s.blocked)
      expect(
        channels.filter((c) => a.isBlocked(c)),
        where,
      ).toEqual(s.blocked);
  });
  return a;
}

describe('BarrierAligner', () => {
  it.each<[string, string[], Step[]]>([
    ['one channel aligns on its barrier at once', ['a'], [{ at: 5, barrier: ['a', 1], expect: aligned(1, 0), blocked: [] }]],
    [
      'two channels: the first barrier blocks its channel until the second',
      ['a', 'b'],
      [
        { at: 100, barrier: ['a', 1], expect: waiting, blocked: ['a'] },
        { at: 130, barrier: ['b', 1], expect: aligned(1, 30), blocked: [] },
      ],
    ],
    [
      'three channels, barriers in any order; alignment time is first to last barrier',
      ['a', 'b', 'c'],
      [
        { at: 10, barrier: ['c', 1], expect: waiting, blocked: ['c'] },
        { at: 15, barrier: ['a', 1], expect: waiting, blocked: ['a', 'c'] },
        { at: 42, barrier: ['b', 1], expect: aligned(1, 32), blocked: [] },
        { at: 50, barrier: ['b', 2], expect: waiting, blocked: ['b'] },
        { at: 51, barrier: ['a', 2], expect: waiting, blocked: ['a', 'b'] },
        { at: 57, barrier: ['c', 2], expect: aligned(2, 7), blocked: [] },
      ],
    ],
    [
      'an ended channel counts as aligned',
      ['a', 'b'],
      [
        { at: 0, end: 'b', expect: waiting },
        { at: 3, barrier: ['a', 1], expect: aligned(1, 0) },
      ],
    ],
    [
      'an end arriving while a checkpoint is pending completes it',
      ['a', 'b', 'c'],
      [
        { at: 0, barrier: ['a', 4], expect: waiting, blocked: ['a'] },
        { at: 2, barrier: ['b', 4], expect: waiting, blocked: ['a', 'b'] },
        { at: 9, end: 'c', expect: aligned(4, 9), blocked: [] },
      ],
    ],
    [
      'an end on a blocked channel leaves the others to align',
      ['a', 'b'],
      [
        { at: 0, barrier: ['a', 1], expect: waiting, blocked: ['a'] },
        { at: 1, end: 'a', expect: waiting, blocked: [] },
        { at: 6, barrier: ['b', 1], expect: aligned(1, 6) },
      ],
    ],
    [
      'stale barriers (at or below the last aligned checkpoint) are ignored',
      ['a', 'b'],
      [
        { at: 0, barrier: ['a', 3], expect: waiting },
        { at: 1, barrier: ['b', 3], expect: aligned(3, 1) },
        { at: 2, barrier: ['a', 3], expect: ignored, blocked: [] },
        { at: 3, barrier: ['b', 2], expect: ignored, blocked: [] },
      ],
    ],
    [
      'a barrier older than the pending one is ignored and blocks nothing',
      ['a', 'b', 'c'],
      [
        { at: 0, barrier: ['a', 5], expect: waiting, blocked: ['a'] },
        { at: 1, barrier: ['b', 4], expect: ignored, blocked: ['a'] },
        { at: 2, barrier: ['b', 5], expect: waiting, blocked: ['a', 'b'] },
        { at: 4, barrier: ['c', 5], expect: aligned(5, 4) },
      ],
    ],
    [
      'a newer barrier supersedes an unfinished alignment, unblocking its channels and restarting the clock',
      ['a', 'b', 'c'],
      [
        { at: 0, barrier: ['a', 1], expect: waiting, blocked: ['a'] },
        { at: 5, barrier: ['b', 1], expect: waiting, blocked: ['a', 'b'] },
        { at: 20, barrier: ['c', 2], expect: waiting, blocked: ['c'] },
        { at: 21, barrier: ['a', 1], expect: ignored, blocked: ['c'] },
        { at: 22, barrier: ['a', 2], expect: waiting, blocked: ['a', 'c'] },
        { at: 25, barrier: ['b', 2], expect: aligned(2, 5), blocked: [] },
        { at: 26, barrier: ['b', 1], expect: ignored },
      ],
    ],
    [
      'a barrier on an ended or unknown channel is ignored',
      ['a', 'b'],
      [
        { at: 0, end: 'a', expect: waiting },
        { at: 1, barrier: ['a', 1], expect: ignored, blocked: [] },
        { at: 2, barrier: ['zzz', 1], expect: ignored, blocked: [] },
        { at: 3, barrier: ['b', 1], expect: aligned(1, 0) },
      ],
    ],
  ])('%s', (_name, channels, steps) => {
    run(channels, steps);
  });

  it('reports the pending checkpoint and the open channels', () => {
    const a = new BarrierAligner(['a', 'b']);
    expect(a.pendingCheckpoint).toBeUndefined();
    a.onBarrier('a', 7, 0);
    expect(a.pendingCheckpoint).toBe(7);
    expect(a.allEnded).toBe(false);
    a.onEnd('a', 1);
    expect([...a.openChannels]).toEqual(['b']);
    expect(a.onEnd('b', 2)).toEqual(aligned(7, 2));
    expect(a.pendingCheckpoint).toBeUndefined();
    expect(a.allEnded).toBe(true);
  });

  it('says why a barrier was ignored', () => {
    const a = new BarrierAligner(['a', 'b']);
    a.onBarrier('a', 2, 0);
    expect(a.onBarrier('b', 1, 0)).toEqual({ kind: 'ignored', reason: 'barrier 1 older than pending 2' });
    a.onBarrier('b', 2, 0);
    expect(a.onBarrier('a', 2, 0)).toEqual({ kind: 'ignored', reason: 'stale barrier 2' });
  });
});

describe('BarrierAligner channels changed by a rescale', () => {
  it('aligns over a channel added after a barrier, and no longer waits for a removed one', () => {
    const a = new BarrierAligner(['p0', 'p1']);
    expect(a.onBarrier('p0', 1, 0).kind).toBe('waiting');
    expect(a.onBarrier('p1', 1, 5)).toEqual({ kind: 'aligned', checkpoint: 1, alignmentMs: 5 });
    a.removeChannel('p1');
    a.addChannel('p2');
    expect(a.onBarrier('p0', 2, 10).kind).toBe('waiting');
    expect(a.isBlocked('p0')).toBe(true);
    expect(a.onBarrier('p2', 2, 12)).toEqual({ kind: 'aligned', checkpoint: 2, alignmentMs: 2 });
  });

  it('refuses to remove a channel in the middle of an alignment', () => {
    const a = new BarrierAligner(['p0', 'p1']);
    a.onBarrier('p0', 1, 0);
    expect(() => a.removeChannel('p1')).toThrow(/during alignment of 1/);
  });
});
