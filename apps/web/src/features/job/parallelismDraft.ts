import { parseNumber } from '../builder/numberInput';
import { slotFit } from './slots';

// What a parallelism typed or dragged on a job's node means before it is sent: whether it is one, and what the
// worker pool can give for it.

export type DraftAdvice =
  | { kind: 'invalid'; message: string }
  /** The value the operator already converges to: nothing to send. */
  | { kind: 'same'; value: number }
  | { kind: 'down'; value: number; freed: number }
  /** `free` is undefined while the pool is not known yet. */
  | { kind: 'fits'; value: number; needed: number; free: number | undefined }
  /** More new slots than the pool has free now: it can still be queued, to wait for slots and roll back without. */
  | { kind: 'short'; value: number; needed: number; free: number };

export interface DraftContext {
  /** The parallelism the operator's chain runs at now. */
  current: number;
  /** The parallelism it converges to (what was asked for last). */
  target: number;
  max: number;
  /** Slots free in the pool now, counting those a rescale of this chain under way already holds (undefined: not known yet). */
  free: number | undefined;
}

/** What the text in an operator's parallelism box (or the slider's position) stands for. */
export function draftAdvice(text: string, { current, target, max, free }: DraftContext): DraftAdvice {
  const parsed = parseNumber(text, { integer: true, min: 1, max, required: true });
  if (!parsed.ok || parsed.value === undefined)
    return { kind: 'invalid', message: `parallelism must be a whole number from 1 to ${max}${max > 1 ? ' (its maxParallelism)' : ''}` };
  const value = parsed.value;
  if (value === target) return { kind: 'same', value };
  if (value <= current) return { kind: 'down', value, freed: current - value };
  const fit = slotFit(current, value, free ?? Infinity);
  return fit.fits ? { kind: 'fits', value, needed: fit.needed, free } : { kind: 'short', value, needed: fit.needed, free: fit.free };
}

const slots = (n: number, what = 'slot') => `${n} ${what}${n === 1 ? '' : 's'}`;

/** The advice in words, for the line under the slider; `how` is what sends it ("release", "Enter"). */
export function adviceText(a: DraftAdvice, how: string): string {
  switch (a.kind) {
    case 'invalid':
      return a.message;
    case 'same':
      return `×${a.value} is already the target`;
    case 'down':
      return `×${a.value}: frees ${slots(a.freed)} · ${how} to rescale`;
    case 'fits':
      return `×${a.value} needs ${slots(a.needed, 'more slot')}${a.free === undefined ? '' : `, ${a.free} free`} · ${how} to rescale`;
    case 'short':
      return `×${a.value} needs ${slots(a.needed, 'more slot')}, only ${a.free} free: it would wait for slots and roll back if none free up · ${how} to queue it anyway`;
  }
}
