import { z } from 'zod';

/** How the side panel edits one setting, derived from the operator's zod schema (the one the API validates). */
export type FieldKind = 'integer' | 'number' | 'string' | 'enum' | 'boolean' | 'scalar' | 'json';

export interface SettingsField {
  name: string;
  kind: FieldKind;
  label: string;
  description?: string;
  required: boolean;
  defaultValue?: unknown;
  options?: string[];
  min?: number;
  max?: number;
}

interface JsonSchema {
  type?: string | string[];
  enum?: unknown[];
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
}

/** "flushIntervalMs" → "Flush interval (ms)". */
export function humanize(name: string): string {
  const ms = name.endsWith('Ms');
  const words = (ms ? name.slice(0, -2) : name).replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1) + (ms ? ' (ms)' : '');
}

function kindOf(s: JsonSchema): FieldKind {
  if (Array.isArray(s.type)) return s.type.every((t) => ['string', 'number', 'boolean', 'null'].includes(t)) ? 'scalar' : 'json';
  if (s.enum && s.enum.every((v) => typeof v === 'string')) return 'enum';
  if (s.type === 'integer' || s.type === 'number' || s.type === 'string' || s.type === 'boolean') return s.type;
  return 'json';
}

// Bounds this wide are zod's "any safe integer", not a limit worth showing.
const meaningful = (n: number | undefined) => (n !== undefined && Math.abs(n) < Number.MAX_SAFE_INTEGER ? n : undefined);

/** The fields of an operator's settings, in the schema's order. */
export function settingsFields(schema: z.ZodType): SettingsField[] {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const required = new Set(json.required ?? []);
  return Object.entries(json.properties ?? {}).map(([name, s]) => ({
    name,
    kind: kindOf(s),
    label: humanize(name),
    required: required.has(name),
    ...(s.description !== undefined && { description: s.description }),
    ...(s.default !== undefined && { defaultValue: s.default }),
    ...(s.enum && { options: s.enum.map(String) }),
    ...(meaningful(s.minimum) !== undefined && { min: meaningful(s.minimum) }),
    ...(meaningful(s.maximum) !== undefined && { max: meaningful(s.maximum) }),
  }));
}

/**
 * What a field's text input means for the settings object: `undefined` leaves the setting out (its default
 * applies). Text that is not a number stays text, so the schema reports it rather than the form hiding it.
 */
export function parseFieldInput(field: Pick<SettingsField, 'kind'>, text: string): unknown {
  const t = text.trim();
  if (t === '') return undefined;
  switch (field.kind) {
    case 'integer':
    case 'number':
      return Number.isFinite(Number(t)) ? Number(t) : t;
    case 'scalar':
      if (t === 'true' || t === 'false') return t === 'true';
      return Number.isFinite(Number(t)) && /^-?[\d.]/.test(t) ? Number(t) : text;
    default:
      return text;
  }
}

/** The text a field's input shows for a setting's value. */
export function fieldText(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'object' ? JSON.stringify(value, null, 2) : String(value);
}
