import { duration, operatorCatalog, specOfDefinition, defineOperator, valueState } from '@keyflow/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { describeUserOperator, settingsFromJsonSchema, settingsJsonSchema, userOperatorSpec } from './operators.ts';

/** What the builder's form reads of each setting (apps/web settingsForm.ts). */
const FORM_KEYWORDS = ['type', 'enum', 'default', 'description', 'minimum', 'maximum', 'format', 'connectionKind'] as const;
function formView(schema: z.ZodType) {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as {
    properties?: Record<string, Record<string, unknown>>;
    required?: string[];
  };
  const properties = Object.entries(json.properties ?? {}).map(([name, p]) => [name, Object.fromEntries(FORM_KEYWORDS.map((k) => [k, p[k]]))]);
  return { properties, required: json.required ?? [] };
}

const issuesOf = (schema: z.ZodType, value: unknown) => {
  const parsed = schema.safeParse(value);
  return parsed.success ? parsed.data : parsed.error.issues.map((i) => [i.path.join('.'), i.message]);
};

const dedupeSettings = z
  .object({
    idField: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[A-Za-z_][\w.]*$/, 'a field name: letters, digits, _ and .')
      .default('id')
      .describe('The field that identifies a record'),
    ttl: duration({ min: 1000 }).prefault('10m').describe('How long an id is remembered'),
    time: z.enum(['event', 'processing'], 'event or processing').default('processing').describe('Which clock'),
    limit: z.number().int().min(1, 'at least one').max(100).optional().describe('At most this many'),
    cache: z.string().min(1).meta({ format: 'connection', connectionKind: 'redis' }).optional().describe('A Redis connection'),
    name: z.string('a name, as text').min(3),
    verbose: z.boolean().default(false),
  })
  .strict();

describe('settings schemas over the wire', () => {
  it('give the builder the same form for every built-in: types, enums, defaults, descriptions, bounds, formats', () => {
    for (const spec of Object.values(operatorCatalog))
      expect(formView(settingsFromJsonSchema(settingsJsonSchema(spec.settings))), spec.type).toEqual(formView(spec.settings));
    expect(formView(settingsFromJsonSchema(settingsJsonSchema(dedupeSettings)))).toEqual(formView(dedupeSettings));
  });

  it("check as the author's schema does, with the author's messages", () => {
    const rebuilt = settingsFromJsonSchema(settingsJsonSchema(dedupeSettings));
    for (const value of [
      {},
      { name: 'dedupe', ttl: '10s', idField: 'user.id', limit: 5, cache: 'local', verbose: true },
      { name: 3, idField: '1x', time: 'wall', limit: 0, extra: true },
      { name: 'ab', ttl: 'P1D' },
      { name: 'abc', ttl: '1.5h', limit: 2.5 },
    ])
      expect(issuesOf(rebuilt, value), JSON.stringify(value)).toEqual(issuesOf(dedupeSettings, value));
    expect(issuesOf(rebuilt, { name: 3, idField: '1x', time: 'wall', limit: 0 })).toEqual([
      ['idField', 'a field name: letters, digits, _ and .'],
      ['time', 'event or processing'],
      ['limit', 'at least one'],
      ['name', 'a name, as text'],
    ]);
  });

  it('read durations as Keyflow types them (10s), not as ISO 8601; their bounds are left to the control plane', () => {
    const rebuilt = settingsFromJsonSchema(settingsJsonSchema(dedupeSettings));
    expect(rebuilt.parse({ name: 'abc', ttl: '2m' })).toMatchObject({ ttl: 120_000 });
    expect(issuesOf(rebuilt, { name: 'abc', ttl: 'PT2M' })).toEqual([['ttl', expect.stringContaining('is not a duration')]]);
    // A bound lives in the duration's transform, which JSON Schema cannot carry.
    expect(issuesOf(dedupeSettings, { name: 'abc', ttl: '10ms' })).toEqual([['ttl', '10ms is shorter than 1s']]);
    expect(rebuilt.safeParse({ name: 'abc', ttl: '10ms' }).success).toBe(true);
  });

  it('fall back to zod’s own conversion for settings that are no plain object', () => {
    const either = z.union([z.object({ a: z.number() }), z.object({ b: z.string() })]);
    const rebuilt = settingsFromJsonSchema(settingsJsonSchema(either));
    expect(rebuilt.safeParse({ a: 1 }).success).toBe(true);
    expect(rebuilt.safeParse({ a: 'x' }).success).toBe(false);
  });
});

describe('a user operator described to the dashboard', () => {
  const dedupe = defineOperator({
    kind: 'dedupeTest',
    title: 'Dedupe',
    description: 'First of each id per key',
    inputs: 'keyed',
    outputs: ['duplicates'],
    settings: dedupeSettings,
    state: { seen: valueState<number>() },
    process() {},
  });

  it('becomes a catalog entry in the browser with its kind, version, side outputs and settings', () => {
    const listed = describeUserOperator(specOfDefinition(dedupe, 'dedupeTest@0123456789ab'));
    expect(listed).toMatchObject({
      type: 'dedupeTest',
      kind: 'keyed',
      label: 'Dedupe',
      description: 'First of each id per key',
      version: 'dedupeTest@0123456789ab',
      outputs: ['duplicates'],
    });
    expect(listed).not.toHaveProperty('twoInputs');
    const spec = userOperatorSpec(JSON.parse(JSON.stringify(listed)));
    expect(spec).toMatchObject({ type: 'dedupeTest', kind: 'keyed', version: 'dedupeTest@0123456789ab', outputs: ['duplicates'] });
    expect(spec.outputFields({}, ['user'])).toBeUndefined();
    expect(formView(spec.settings)).toEqual(formView(dedupeSettings));
  });

  it('is never a built-in', () => {
    expect(() => describeUserOperator(operatorCatalog.count)).toThrow("'count' is no user operator");
  });
});
