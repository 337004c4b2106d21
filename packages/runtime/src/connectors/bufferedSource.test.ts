import { eventTimeSchema } from '@keyflow/core';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.ts';
import { BufferedSource, type SplitReader } from './bufferedSource.ts';
import { emitUntil } from './testing/sourceDriver.ts';

/** A broker whose splits fail to open a given number of times (Infinity: for good), then serve `{n}` records. */
class FlakySource extends BufferedSource {
  opens = 0;
  constructor(
    private readonly failures: number,
    failAfterMs: number,
  ) {
    super(1, 0, 1, eventTimeSchema.parse({}), 'json', () => {}, silentLogger);
    this.failAfterMs = failAfterMs;
  }
  protected splitName(): string {
    return 'flaky';
  }
  protected async openSplit(_split: number, offset: unknown): Promise<SplitReader> {
    if (++this.opens <= this.failures) throw new Error('connection refused');
    let next = typeof offset === 'number' ? offset + 1 : 0;
    return {
      next: async (max) => {
        await new Promise((r) => setTimeout(r, 5));
        return Array.from({ length: Math.min(max, 10) }, () => ({ offset: next, data: JSON.stringify({ n: next++ }) }));
      },
      close: async () => {},
    };
  }
}

describe('broker source base', () => {
  it('reopens a split that failed, from the last emitted offset, and reads on', async () => {
    const s = new FlakySource(2, 60_000);
    const got = await emitUntil(s, (g) => g.length >= 30);
    expect(got.slice(0, 3).map((g) => g.record)).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }]);
    expect(s.opens).toBe(3);
    await s.close();
  });

  it('fails the subtask, naming the split and the error, once a split kept failing for its limit', async () => {
    const s = new FlakySource(Infinity, 1500);
    await expect(emitUntil(s, () => false, 10_000)).rejects.toThrow('reading flaky kept failing for 1.5 s: connection refused');
    await s.close();
  });
});
