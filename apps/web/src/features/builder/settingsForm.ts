import { CONNECTION_KINDS, operatorSpec, parseDuration, type ConnectionKind, type OperatorSpec } from '@keyflow/core';
import { z } from 'zod';
import { parseNumber, type NumberRule, type Parsed } from './numberInput';

/** How the side panel edits one setting, derived from the operator's zod schema (the one the API validates). */
export type FieldKind = 'integer' | 'number' | 'string' | 'duration' | 'connection' | 'enum' | 'boolean' | 'scalar' | 'json';

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
  /** A duration's own zod schema: its bounds live in a transform, which the JSON schema cannot show. */
  schema?: z.ZodType;
  /** A connection field's kind of connection: the field offers the stored connections of that kind. */
  connectionKind?: ConnectionKind;
}

interface JsonSchema {
  type?: string | string[];
  enum?: unknown[];
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  format?: string;
  connectionKind?: string;
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
  if (s.type === 'string' && s.format === 'duration') return 'duration';
  if (s.type === 'string' && s.format === 'connection' && CONNECTION_KINDS.includes(s.connectionKind as ConnectionKind)) return 'connection';
  if (s.type === 'integer' || s.type === 'number' || s.type === 'string' || s.type === 'boolean') return s.type;
  return 'json';
}

// Bounds this wide are zod's "any safe integer", not a limit worth showing.
const meaningful = (n: number | undefined) => (n !== undefined && Math.abs(n) < Number.MAX_SAFE_INTEGER ? n : undefined);

/** The fields of an operator's settings, in the schema's order. */
export function settingsFields(schema: z.ZodType): SettingsField[] {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const required = new Set(json.required ?? []);
  const shape: Record<string, z.ZodType> = schema instanceof z.ZodObject ? schema.shape : {};
  return Object.entries(json.properties ?? {}).map(([name, s]) => {
    const kind = kindOf(s);
    return {
      name,
      kind,
      label: humanize(name),
      required: required.has(name),
      ...(s.description !== undefined && { description: s.description }),
      ...(s.default !== undefined && { defaultValue: s.default }),
      ...(s.enum && { options: s.enum.map(String) }),
      ...(meaningful(s.minimum) !== undefined && { min: meaningful(s.minimum) }),
      ...(meaningful(s.maximum) !== undefined && { max: meaningful(s.maximum) }),
      ...(kind === 'duration' && shape[name] && { schema: shape[name] }),
      ...(kind === 'connection' && { connectionKind: s.connectionKind as ConnectionKind }),
    };
  });
}

// By catalog entry: a user operator's type may come back at another version, with other settings.
const bySpec = new WeakMap<OperatorSpec, SettingsField[]>();

/** The settings fields of an operator type (none for an unknown type), derived once per catalog entry. */
export function settingsFieldsOf(type: string): SettingsField[] {
  const spec = operatorSpec(type);
  if (!spec) return [];
  let fields = bySpec.get(spec);
  if (!fields) {
    fields = settingsFields(spec.settings);
    bySpec.set(spec, fields);
  }
  return fields;
}

/** The rule a number field's text must meet, from the field's schema. */
export function numberRule(field: Pick<SettingsField, 'kind' | 'required' | 'min' | 'max'>): NumberRule {
  return {
    integer: field.kind === 'integer',
    required: field.required,
    ...(field.min !== undefined && { min: field.min }),
    ...(field.max !== undefined && { max: field.max }),
  };
}

const DURATION_FORMAT = 'a duration such as 500ms, 10s, 1m or 1.5h';

/**
 * What a duration field's text stands for: the text itself (the setting keeps what was typed, core reads it as ms),
 * or why it stands for none, with the bounds the setting's schema checks.
 */
export function parseDurationInput(field: Pick<SettingsField, 'required' | 'schema'>, text: string): Parsed<string | undefined> {
  const t = text.trim();
  if (t === '') return field.required ? { ok: false, message: 'required' } : { ok: true, value: undefined };
  const ms = parseDuration(t);
  if (ms === undefined) return { ok: false, message: DURATION_FORMAT };
  const checked = field.schema?.safeParse(t);
  if (checked && !checked.success)
    return { ok: false, message: ms < 0 ? 'may not be negative' : (checked.error.issues[0]?.message ?? DURATION_FORMAT) };
  return { ok: true, value: t };
}

/** What a duration's text reads as, shown under its field: "10s = 10,000 ms"; nothing for text that is none. */
export function durationReadout(text: string): string | undefined {
  const t = text.trim();
  const ms = t === '' ? undefined : parseDuration(t);
  return ms === undefined ? undefined : `${t} = ${ms.toLocaleString('en-US')} ms`;
}

/**
 * What a field's text means for the settings object, or why it means no valid value: `undefined` leaves the
 * setting out (its default applies). A scalar that reads as a number or a boolean becomes one; JSON is parsed.
 */
export function parseFieldInput(field: Pick<SettingsField, 'kind' | 'required' | 'min' | 'max' | 'schema'>, text: string): Parsed<unknown> {
  if (field.kind === 'integer' || field.kind === 'number') return parseNumber(text, numberRule(field));
  if (field.kind === 'duration') return parseDurationInput(field, text);
  const t = text.trim();
  if (t === '') return { ok: true, value: undefined };
  if (field.kind === 'json') {
    try {
      return { ok: true, value: JSON.parse(t) };
    } catch {
      return { ok: false, message: 'not valid JSON yet' };
    }
  }
  if (field.kind !== 'scalar') return { ok: true, value: text };
  if (t === 'true' || t === 'false') return { ok: true, value: t === 'true' };
  return { ok: true, value: Number.isFinite(Number(t)) && /^-?[\d.]/.test(t) ? Number(t) : text };
}

/** The text a field's input shows for a setting's value. */
export function fieldText(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'object' ? JSON.stringify(value, null, 2) : String(value);
}
