import { describeUserOperator, type UserOperator } from '@keyflow/api';
import { defineOperator, duration, operatorSpec, specOfDefinition, userOperatorSpecs, validateGraph } from '@keyflow/core';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { fromGraph, indexIssues } from '../features/builder/builderGraph';
import { typeInto } from '../features/builder/fieldDrafts';
import { settingsFieldsOf } from '../features/builder/settingsForm';
import { registerUserOperators } from './userOperators';

/** What GET /api/operators says of an operator with these settings, at `hash`. */
function listed(kind: string, settings: z.ZodType, hash = '0123456789ab', outputs?: string[]): UserOperator {
  const def = defineOperator({ kind, title: kind, description: `the ${kind}`, settings, inputs: 'keyed', ...(outputs && { outputs }), process() {} });
  return JSON.parse(JSON.stringify(describeUserOperator(specOfDefinition(def, `${kind}@${hash}`)))) as UserOperator;
}

const tagSettings = z
  .object({
    field: z
      .string()
      .regex(/^[A-Za-z_][\w.]*$/, 'a field name: letters, digits, _ and .')
      .optional()
      .describe('Field shown as the value; empty = the whole record'),
    ttl: duration({ min: 1 }).prefault('10m').describe('How long an id is remembered'),
    time: z.enum(['event', 'processing']).default('event').describe('Which clock'),
    limit: z.number().int().min(1).max(1000).default(3).describe('At most'),
    cache: z.string().min(1).meta({ format: 'connection', connectionKind: 'redis' }).optional().describe('A Redis connection'),
  })
  .strict();

describe('user operators in the dashboard’s catalog', () => {
  afterEach(() => registerUserOperators([]));

  it('are registered as the control plane lists them, and only those', () => {
    registerUserOperators([listed('tagger', tagSettings), listed('splitter', z.object({}), 'ffffffffffff', ['big'])]);
    expect(userOperatorSpecs().map((s) => s.version)).toEqual(['tagger@0123456789ab', 'splitter@ffffffffffff']);
    expect(operatorSpec('splitter')).toMatchObject({ kind: 'keyed', outputs: ['big'] });
    registerUserOperators([listed('splitter', z.object({}), 'ffffffffffff', ['big'])]);
    expect(operatorSpec('tagger')).toBeUndefined();
  });

  it('keep their entry while their version stays, and take the new one when it changes', () => {
    registerUserOperators([listed('tagger', tagSettings)]);
    const held = operatorSpec('tagger');
    registerUserOperators([listed('tagger', tagSettings)]);
    expect(operatorSpec('tagger')).toBe(held);
    registerUserOperators([listed('tagger', z.object({ other: z.string() }), 'aaaaaaaaaaaa')]);
    expect(operatorSpec('tagger')).not.toBe(held);
    expect(settingsFieldsOf('tagger').map((f) => f.name)).toEqual(['other']);
  });

  it('get a built-in’s form: descriptions, defaults, bounds, enums, durations and connections', () => {
    registerUserOperators([listed('tagger', tagSettings)]);
    expect(settingsFieldsOf('tagger')).toMatchObject([
      { name: 'field', kind: 'string', required: false, description: 'Field shown as the value; empty = the whole record' },
      { name: 'ttl', kind: 'duration', defaultValue: '10m', description: 'How long an id is remembered' },
      { name: 'time', kind: 'enum', options: ['event', 'processing'], defaultValue: 'event' },
      { name: 'limit', kind: 'integer', min: 1, max: 1000, defaultValue: 3 },
      { name: 'cache', kind: 'connection', connectionKind: 'redis', required: false },
    ]);
  });

  it('check typed settings with their author’s messages, as a built-in’s are checked', () => {
    registerUserOperators([listed('tagger', tagSettings)]);
    const graph = {
      vertices: [
        { id: 'events', type: 'generator', parallelism: 1 },
        { id: 'tagger', type: 'tagger', parallelism: 1 },
        { id: 'out', type: 'log', parallelism: 1 },
      ],
      edges: [
        { from: 'events', to: 'tagger', partitioning: 'hash', key: 'user' },
        { from: 'tagger', to: 'out', partitioning: 'forward' },
      ],
    };
    expect(validateGraph(graph).ok).toBe(true);
    let doc = fromGraph(graph).doc;
    doc = typeInto(doc, 'tagger', 'settings.field', '1st');
    doc = typeInto(doc, 'tagger', 'settings.ttl', 'P1D');
    const fields = indexIssues(doc).fields.get('tagger');
    expect(fields?.get('settings.field')).toBe('a field name: letters, digits, _ and .');
    expect(fields?.get('settings.ttl')).toBe('a duration such as 500ms, 10s, 1m or 1.5h');
    doc = typeInto(doc, 'tagger', 'settings.field', 'item');
    doc = typeInto(doc, 'tagger', 'settings.ttl', '30s');
    expect(indexIssues(doc).all).toEqual([]);
  });
});
