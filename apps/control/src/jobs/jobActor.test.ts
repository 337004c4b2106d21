import { describe, expect, it } from 'vitest';
import { JobActor } from './jobActor.ts';

describe('JobActor', () => {
  it('runs steps one after another, in order, also when an earlier one waits', async () => {
    const actor = new JobActor();
    const seen: string[] = [];
    const slow = actor.run(async () => {
      seen.push('a start');
      await new Promise((r) => setTimeout(r, 20));
      seen.push('a end');
    });
    const fast = actor.run(() => void seen.push('b'));
    await Promise.all([slow, fast]);
    expect(seen).toEqual(['a start', 'a end', 'b']);
  });

  it('gives each caller its step’s result or failure, and goes on after a failure', async () => {
    const actor = new JobActor();
    await expect(actor.run(() => Promise.reject(new Error('no')))).rejects.toThrow('no');
    await expect(actor.run(() => 42)).resolves.toBe(42);
  });

  it('wakes a waiter after the step that makes its condition true, without polling', async () => {
    const actor = new JobActor();
    let running = false;
    const waiting = actor.until(() => running);
    await actor.run(() => {});
    let settled = false;
    void waiting.then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    await actor.run(() => void (running = true));
    await expect(waiting).resolves.toBe(true);
  });

  it('answers false when what it waits for will not come (gone), or at its deadline', async () => {
    const actor = new JobActor();
    let ended = false;
    const gone = actor.until(() => false, { gone: () => ended });
    await actor.run(() => void (ended = true));
    await expect(gone).resolves.toBe(false);
    await expect(actor.until(() => false, { timeoutMs: 10 })).resolves.toBe(false);
    await expect(actor.until(() => true, { timeoutMs: 10 })).resolves.toBe(true);
  });
});
