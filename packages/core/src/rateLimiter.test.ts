import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rateLimiter.ts';

describe('RateLimiter', () => {
  it('allows what the rate permits since the start, minus what went', () => {
    const r = new RateLimiter(1000, 0);
    expect(r.allowance(4096, 0)).toEqual({ budget: 0, waitMs: 1 });
    expect(r.allowance(4096, 10)).toEqual({ budget: 10, waitMs: 0 });
    r.took(10);
    expect(r.allowance(4096, 10)).toEqual({ budget: 0, waitMs: 1 });
    expect(r.allowance(4096, 25)).toEqual({ budget: 15, waitMs: 0 });
  });

  it.each([
    // rate, emitted, now → wait until the next event is due
    [100, 0, 0, 10],
    [100, 5, 20, 40],
    [10, 3, 399.5, 1],
    [3, 0, 0, 334],
  ])('at %i/s with %i emitted at %f ms, waits %i ms', (rate, emitted, now, wait) => {
    const r = new RateLimiter(rate, 0);
    r.took(emitted);
    expect(r.allowance(1000, now)).toEqual({ budget: 0, waitMs: wait });
  });

  it('caps the budget at the batch size', () => {
    const r = new RateLimiter(1_000_000, 0);
    expect(r.allowance(4096, 1000).budget).toBe(4096);
  });

  it('is unlimited at rate 0', () => {
    const r = new RateLimiter(0, 0);
    r.took(1e9);
    expect(r.allowance(4096, 0)).toEqual({ budget: 4096, waitMs: 0 });
  });

  it('catches up gradually after a long pause instead of in one burst', () => {
    const r = new RateLimiter(100, 0);
    r.took(100);
    // 10 s later: 900 are due, within the bound of 10 s worth (1000): no catch-up yet.
    expect(r.allowance(10_000, 10_000).budget).toBe(900);
    // 20 s later: 1900 due, over the bound: these still go, but the start moves up so that no more are owed.
    expect(r.allowance(10_000, 20_000).budget).toBe(1900);
    expect(r.allowance(10_000, 20_000)).toEqual({ budget: 0, waitMs: 10 });
  });

  it('starts counting afresh when the rate changes, not when it is set again unchanged', () => {
    const r = new RateLimiter(100, 0);
    r.took(50);
    r.setRate(100, 400);
    expect(r.allowance(1000, 600).budget).toBe(10);
    r.setRate(200, 600);
    expect(r.allowance(1000, 600)).toEqual({ budget: 0, waitMs: 5 });
    expect(r.allowance(1000, 650).budget).toBe(10);
  });
});
