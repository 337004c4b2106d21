import ms from 'ms';
import { z } from 'zod';

/** A duration as people type it: a number and a unit (`500ms`, `10s`, `1.5m`, `2h`, `1d`); a bare number is ms. */
const DURATION = /^-?\d+(\.\d+)?\s*(ms|s|m|h|d)?$/;

/** Milliseconds of a typed duration, or undefined when the text is not one (`10s` → 10000). */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (!DURATION.test(t)) return undefined;
  const v = ms(t as ms.StringValue);
  return Number.isFinite(v) ? Math.round(v) : undefined;
}

/** A duration in ms as the shortest text that reads back to it (`60000` → `1m`, `1500` → `1500ms`). */
export function formatDuration(millis: number): string {
  const sign = millis < 0 ? '-' : '';
  const a = Math.abs(millis);
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const)
    if (a >= size && a % size === 0) return `${sign}${a / size}${unit}`;
  return `${sign}${a}ms`;
}

/**
 * A duration setting: typed as text (`10s`), read as ms. The JSON schema says `format: "duration"`, which is how the
 * builder knows to show a duration input for it.
 */
export function duration(opts: { min?: number; max?: number; signed?: boolean } = {}) {
  const { min = opts.signed ? -Infinity : 0, max = 365 * 86_400_000 } = opts;
  return z
    .string()
    .meta({ format: 'duration' })
    .transform((text, ctx) => {
      const v = parseDuration(text);
      if (v === undefined) {
        ctx.addIssue({ code: 'custom', message: `'${text}' is not a duration: a number and a unit, as 500ms, 10s, 1m, 2h or 1d` });
        return z.NEVER;
      }
      if (v < min) ctx.addIssue({ code: 'custom', message: `${text} is shorter than ${formatDuration(min)}` });
      if (v > max) ctx.addIssue({ code: 'custom', message: `${text} is longer than ${formatDuration(max)}` });
      return v;
    });
}
