import { duration, type OperatorSpec } from '@keyflow/core';
import { z } from 'zod';

// User operators (KEYFLOW_OPERATORS) live in the control plane's process; the dashboard learns them from
// GET /api/operators. Their settings schemas travel as JSON Schema, and these two functions are each other's inverse:
// what z.toJSONSchema leaves out and the builder's form needs (the texts of the author's messages, the `duration` and
// `connection` formats) is carried across and put back.

/** A JSON Schema object, as z.toJSONSchema writes one. */
export type JsonSchema = Record<string, unknown>;

export const userOperatorSchema = z.object({
  /** Its type in pipelines. */
  type: z.string(),
  kind: z.enum(['keyed', 'transform']),
  label: z.string(),
  description: z.string(),
  /** `<type>@<hash of its module>`: what a job deployed now records and its workers run. */
  version: z.string(),
  /** Two keyed inputs, left and right (a join). */
  twoInputs: z.boolean().optional(),
  /** Its side outputs, by name: edges may be drawn from each (an edge's `output`). */
  outputs: z.array(z.string()).optional(),
  /** Its settings, as the JSON Schema of their input (see `settingsJsonSchema`). */
  settingsSchema: z.record(z.string(), z.unknown()),
});
export const operatorListSchema = z.object({ operators: z.array(userOperatorSchema) });
export type UserOperator = z.infer<typeof userOperatorSchema>;
export type OperatorList = z.infer<typeof operatorListSchema>;

interface ZodDef {
  type: string;
  check?: string;
  format?: string;
  inclusive?: boolean;
  checks?: { _zod: { def: ZodDef } }[];
  error?: (...args: never[]) => unknown;
}

/** String formats whose JSON Schema keyword is `pattern`. */
const PATTERN_FORMATS = new Set(['regex', 'starts_with', 'ends_with', 'includes', 'lowercase', 'uppercase']);

/** The JSON Schema keyword of a zod check on a schema of type `of`. */
function checkKeyword(def: ZodDef, of: string): string | undefined {
  switch (def.check) {
    case 'min_length':
      return of === 'array' ? 'minItems' : 'minLength';
    case 'max_length':
      return of === 'array' ? 'maxItems' : 'maxLength';
    case 'greater_than':
      return def.inclusive ? 'minimum' : 'exclusiveMinimum';
    case 'less_than':
      return def.inclusive ? 'maximum' : 'exclusiveMaximum';
    case 'multiple_of':
      return 'multipleOf';
    case 'string_format':
      return PATTERN_FORMATS.has(def.format ?? '') ? 'pattern' : 'format';
  }
  return undefined;
}

/** The JSON Schema keyword a zod issue breaks. */
function issueKeyword(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'too_small':
      return issue.origin === 'array' ? 'minItems' : issue.origin === 'string' ? 'minLength' : issue.inclusive ? 'minimum' : 'exclusiveMinimum';
    case 'too_big':
      return issue.origin === 'array' ? 'maxItems' : issue.origin === 'string' ? 'maxLength' : issue.inclusive ? 'maximum' : 'exclusiveMaximum';
    case 'invalid_format':
      return PATTERN_FORMATS.has(issue.format) ? 'pattern' : 'format';
    case 'not_multiple_of':
      return 'multipleOf';
    case 'invalid_value':
      return 'enum';
    case 'invalid_type':
      return 'type';
  }
  return undefined;
}

// A message given as text is kept as a function of no argument; one computed from the issue has no text to carry.
const textOf = (error: ZodDef['error']) => (error && error.length === 0 ? error() : undefined);

/** The messages an author wrote on one schema, by the JSON Schema keyword they explain (`type`: the schema's own). */
function authoredMessages(def: ZodDef): Record<string, string> | undefined {
  const messages: Record<string, string> = {};
  const own = textOf(def.error);
  if (typeof own === 'string') messages[def.type === 'enum' ? 'enum' : 'type'] = own;
  for (const check of def.checks ?? []) {
    const keyword = checkKeyword(check._zod.def, def.type);
    const text = textOf(check._zod.def.error);
    if (keyword && typeof text === 'string') messages[keyword] ??= text;
  }
  return Object.keys(messages).length ? messages : undefined;
}

/**
 * The JSON Schema of settings as the builder edits them (their input), with the messages their author wrote under
 * `errorMessage` (keyword → text, as ajv-errors has it): JSON Schema has no place of its own for them.
 */
export function settingsJsonSchema(settings: z.ZodType): JsonSchema {
  return z.toJSONSchema(settings, {
    io: 'input',
    unrepresentable: 'any',
    override: ({ zodSchema, jsonSchema }) => {
      const messages = authoredMessages(zodSchema._zod.def as ZodDef);
      if (messages) (jsonSchema as JsonSchema).errorMessage = messages;
    },
  }) as JsonSchema;
}

/** What a user operator's catalog entry tells the dashboard. */
export function describeUserOperator(spec: OperatorSpec): UserOperator {
  if (!spec.version || (spec.kind !== 'keyed' && spec.kind !== 'transform')) throw new Error(`'${spec.type}' is no user operator`);
  return {
    type: spec.type,
    kind: spec.kind,
    label: spec.label,
    description: spec.description,
    version: spec.version,
    ...(spec.twoInputs && { twoInputs: true }),
    ...(spec.outputs?.length && { outputs: [...spec.outputs] }),
    settingsSchema: settingsJsonSchema(spec.settings),
  };
}

/** Keywords of an object schema that z.fromJSONSchema has to see whole. */
const WHOLE_OBJECT_KEYWORDS = ['anyOf', 'oneOf', 'allOf', '$ref', 'patternProperties', 'propertyNames', 'minProperties', 'maxProperties'];

/** The pattern zod writes for a string format, if any. */
function formatPattern(format: string): unknown {
  return (z.toJSONSchema(z.fromJSONSchema({ type: 'string', format })) as JsonSchema).pattern;
}

/** One setting's schema: zod's own conversion, with the formats and messages it would lose put back. */
function settingSchema(json: JsonSchema, required: boolean, defs: unknown): z.ZodType {
  const { default: fallback, description, format, connectionKind, errorMessage, ...rest } = json;
  let schema: z.ZodType;
  // z.fromJSONSchema reads `duration` as ISO 8601 (P1D); Keyflow's durations are typed as 10s, 5m.
  if (format === 'duration') schema = duration();
  else {
    const own: JsonSchema = {
      ...rest,
      ...(format !== 'connection' && format !== undefined && { format }),
      ...(defs !== undefined && { $defs: defs }),
    };
    // zod writes a format's own pattern beside it (date-time); read back, the format brings it again.
    if (typeof format === 'string' && own.pattern !== undefined && own.pattern === formatPattern(format)) delete own.pattern;
    const base = z.fromJSONSchema(own as z.core.JSONSchema.JSONSchema);
    schema = format === 'connection' ? base.meta({ format, connectionKind }) : base;
  }
  const messages = errorMessage as Record<string, string> | undefined;
  if (messages) {
    const def = schema.def as z.core.$ZodTypeDef;
    schema = schema.clone({ ...def, error: (issue) => messages[issueKeyword(issue) ?? ''] ?? messages.type }, { parent: true });
  }
  // A duration's default is text, read like any typed value (core's settings use prefault for them).
  if (fallback !== undefined) schema = format === 'duration' ? schema.prefault(fallback) : schema.default(fallback);
  else if (!required) schema = schema.optional();
  return typeof description === 'string' ? schema.describe(description) : schema;
}

/**
 * A user operator's settings schema in the browser, from `settingsJsonSchema`'s JSON: each setting with its
 * description, default, bounds, enum, format and messages, so the form and its checks are a built-in's. What
 * JSON Schema cannot say (refinements across settings, a duration's bounds) the control plane checks on save.
 */
export function settingsFromJsonSchema(json: JsonSchema): z.ZodType {
  const properties = json.properties as Record<string, JsonSchema> | undefined;
  const plainObject = json.type === 'object' && properties && !WHOLE_OBJECT_KEYWORDS.some((k) => k in json);
  if (!plainObject || (json.additionalProperties !== undefined && typeof json.additionalProperties !== 'boolean')) return z.fromJSONSchema(json);
  const required = new Set((json.required as string[] | undefined) ?? []);
  const shape = Object.fromEntries(Object.entries(properties).map(([name, p]) => [name, settingSchema(p, required.has(name), json.$defs)]));
  return json.additionalProperties === false ? z.strictObject(shape) : z.looseObject(shape);
}

/** A user operator as the dashboard's catalog holds it: what the control plane lists, its settings schema rebuilt. */
export function userOperatorSpec(op: UserOperator): OperatorSpec & { version: string } {
  return {
    type: op.type,
    kind: op.kind,
    label: op.label,
    description: op.description,
    version: op.version,
    ...(op.twoInputs && { twoInputs: true }),
    ...(op.outputs?.length && { outputs: op.outputs }),
    settings: settingsFromJsonSchema(op.settingsSchema),
    // The fields it emits are its code's business, which only the control plane and the workers hold.
    outputFields: () => undefined,
  };
}
