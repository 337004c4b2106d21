import { describe, expect, it } from 'vitest';
import { adviceText, draftAdvice } from './parallelismDraft';

const ctx = { current: 2, target: 2, max: 32, free: 3 };

describe('a parallelism typed or dragged on a job node', () => {
  it.each(['', '0', '33', '2.5', 'two', '1e1x', '-1'])('refuses %j in plain words', (text) => {
    expect(draftAdvice(text, ctx)).toEqual({ kind: 'invalid', message: 'parallelism must be a whole number from 1 to 32 (its maxParallelism)' });
  });

  it('reads a whole number in range, with spaces around it', () => {
    expect(draftAdvice(' 4 ', ctx)).toEqual({ kind: 'fits', value: 4, needed: 2, free: 3 });
  });

  it('says how many new slots a scale-up needs, and when the pool has fewer free', () => {
    expect(draftAdvice('5', ctx)).toEqual({ kind: 'fits', value: 5, needed: 3, free: 3 });
    expect(draftAdvice('6', ctx)).toEqual({ kind: 'short', value: 6, needed: 4, free: 3 });
    expect(draftAdvice('1', ctx)).toEqual({ kind: 'down', value: 1, freed: 1 });
    expect(draftAdvice('2', ctx)).toEqual({ kind: 'same', value: 2 });
  });

  it('counts from what runs now, while a rescale to another target is queued', () => {
    expect(draftAdvice('2', { ...ctx, target: 4 })).toEqual({ kind: 'down', value: 2, freed: 0 });
    expect(draftAdvice('4', { ...ctx, target: 4 })).toEqual({ kind: 'same', value: 4 });
    expect(draftAdvice('5', { ...ctx, target: 4 })).toEqual({ kind: 'fits', value: 5, needed: 3, free: 3 });
  });

  it('words the advice, and still offers to queue a value the pool cannot give now', () => {
    expect(adviceText(draftAdvice('3', ctx), 'release')).toBe('×3 needs 1 more slot, 3 free · release to rescale');
    expect(adviceText(draftAdvice('9', ctx), 'Enter')).toBe(
      '×9 needs 7 more slots, only 3 free: it would wait for slots and roll back if none free up · Enter to queue it anyway',
    );
    expect(adviceText(draftAdvice('1', ctx), 'release')).toBe('×1: frees 1 slot · release to rescale');
    expect(adviceText(draftAdvice('9', { ...ctx, free: undefined }), 'release')).toBe('×9 needs 7 more slots · release to rescale');
    const single = { current: 1, target: 1, max: 1, free: 0 };
    expect(draftAdvice('1', single)).toEqual({ kind: 'same', value: 1 });
    expect(draftAdvice('2', single)).toEqual({ kind: 'invalid', message: 'parallelism must be a whole number from 1 to 1' });
  });
});
