import { describe, expect, it } from 'vitest';
import { freeSlots, heldSlots, slotFit } from './slots';

describe('slots a rescale needs', () => {
  it('adds up what each worker has free, never less than none', () => {
    expect(freeSlots([])).toBe(0);
    expect(
      freeSlots([
        { slots: 4, usedSlots: 3 },
        { slots: 4, usedSlots: 0 },
        { slots: 2, usedSlots: 3 },
      ]),
    ).toBe(5);
  });

  it.each([
    // current, next, free → needed, fits
    [1, 2, 4, 1, true],
    [2, 6, 4, 4, true],
    [2, 7, 4, 5, false],
    [3, 1, 0, 0, true],
    [3, 3, 0, 0, true],
  ])('×%i → ×%i with %i free needs %i new slots (fits: %s)', (current, next, free, needed, fits) => {
    expect(slotFit(current, next, free)).toEqual({ needed, free, fits });
  });

  it('counts the slots a scale-up under way holds once its new subtasks run, and none before or for a scale-down', () => {
    const rollingOut = { status: 'ALIGNING' as const, subtasksStartedAt: '2026-01-01T00:00:00.000Z', toParallelism: 4 };
    expect(heldSlots(rollingOut, 1)).toBe(3);
    expect(heldSlots({ ...rollingOut, subtasksStartedAt: null }, 1)).toBe(0);
    expect(heldSlots({ ...rollingOut, status: 'WAITING_FOR_SLOTS' }, 1)).toBe(0);
    expect(heldSlots({ ...rollingOut, toParallelism: 1 }, 3)).toBe(0);
    expect(heldSlots(undefined, 1)).toBe(0);
  });
});
