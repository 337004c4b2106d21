// What a number typed into a field stands for, or why it stands for none, in words a person reads inline.

export interface NumberRule {
  integer: boolean;
  min?: number;
  max?: number;
  /** Whether an empty field is a problem; else it stands for "no value" (a setting's default). */
  required: boolean;
  /** Follows the bounds in messages, e.g. " s". */
  unit?: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

// Decimal notation only: Number() also reads "0x10", "0b1" and "Infinity".
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function bounds({ min, max, unit = '' }: NumberRule): string {
  if (min !== undefined && max !== undefined) return ` from ${min} to ${max}${unit}`;
  if (min !== undefined) return `, at least ${min}${unit}`;
  if (max !== undefined) return `, at most ${max}${unit}`;
  return '';
}

/** The number `text` stands for under `rule` (undefined for an empty optional field), or what is wrong with it. */
export function parseNumber(text: string, rule: NumberRule): Parsed<number | undefined> {
  const t = text.trim();
  if (t === '') return rule.required ? { ok: false, message: 'required' } : { ok: true, value: undefined };
  const n = DECIMAL.test(t) ? Number(t) : NaN;
  const whole = `a whole number${bounds(rule)}`;
  if (rule.integer && !Number.isSafeInteger(n)) return { ok: false, message: whole };
  if (!Number.isFinite(n)) return { ok: false, message: `a number${bounds(rule)}` };
  const unit = rule.unit ?? '';
  if (rule.min !== undefined && n < rule.min) return { ok: false, message: rule.integer ? whole : `at least ${rule.min}${unit}` };
  if (rule.max !== undefined && n > rule.max) return { ok: false, message: rule.integer ? whole : `at most ${rule.max}${unit}` };
  return { ok: true, value: n };
}
