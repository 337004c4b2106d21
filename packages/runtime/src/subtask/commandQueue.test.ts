import { describe, expect, it } from 'vitest';
import { CommandQueue } from './commandQueue.ts';

const tick = () => new Promise((r) => setImmediate(r));

describe('CommandQueue', () => {
  it('handles commands in arrival order', async () => {
    const seen: number[] = [];
    const q = new CommandQueue<number>(async (c) => void seen.push(c));
    [1, 2, 3].forEach((c) => q.push(c));
    await q.drain();
    expect(seen).toEqual([1, 2, 3]);
    expect(q.size).toBe(0);
  });

  it('never runs a command inside another: one that arrives while a handler waits runs after it returned', async () => {
    const log: string[] = [];
    let release!: () => void;
    const q = new CommandQueue<string>(async (c) => {
      log.push(`start ${c}`);
      if (c === 'rescale') {
        // A wait inside the handler (for handed-over state) during which more commands arrive and a drain is asked for.
        q.push('complete');
        await q.drain();
        await new Promise<void>((r) => (release = r));
      }
      log.push(`end ${c}`);
    });
    q.push('rescale');
    const draining = q.drain();
    await tick();
    expect(q.busy).toBe(true);
    expect(log).toEqual(['start rescale']);
    q.push('stop');
    await q.drain();
    expect(log).toEqual(['start rescale']);
    release();
    await draining;
    expect(log).toEqual(['start rescale', 'end rescale', 'start complete', 'end complete', 'start stop', 'end stop']);
    expect(q.busy).toBe(false);
  });

  it('stops at a failing handler, keeps the rest queued, and can drain again', async () => {
    const seen: string[] = [];
    const q = new CommandQueue<string>(async (c) => {
      if (c === 'bad') throw new Error('boom');
      seen.push(c);
    });
    ['a', 'bad', 'b'].forEach((c) => q.push(c));
    await expect(q.drain()).rejects.toThrow('boom');
    expect(q.busy).toBe(false);
    expect(q.size).toBe(1);
    await q.drain();
    expect(seen).toEqual(['a', 'b']);
  });
});
