import { operatorCatalog } from '@keyflow/core';
import { describe, expect, it } from 'vitest';
import { humanize, parseFieldInput, settingsFields } from './settingsForm';

describe('settings forms come from the operators’ zod schemas', () => {
  it('the generator: typed fields with their bounds, defaults and help', () => {
    const fields = settingsFields(operatorCatalog.generator.settings);
    expect(fields.map((f) => [f.name, f.kind])).toEqual([
      ['seed', 'integer'],
      ['rate', 'number'],
      ['keys', 'integer'],
      ['skew', 'enum'],
      ['zipfExponent', 'number'],
      ['total', 'integer'],
      ['splits', 'integer'],
    ]);
    const splits = fields.find((f) => f.name === 'splits')!;
    expect(splits).toMatchObject({ min: 1, max: 1024, defaultValue: 16, required: false, label: 'Splits' });
    expect(splits.description).toMatch(/most parallelism/);
    expect(fields.find((f) => f.name === 'seed')).not.toHaveProperty('max');
    expect(fields.find((f) => f.name === 'skew')!.options).toEqual(['uniform', 'zipf']);
  });

  it('the postgres sink: a required table, optional fields, a duration in ms', () => {
    const fields = settingsFields(operatorCatalog.postgres.settings);
    expect(fields.find((f) => f.name === 'table')).toMatchObject({ kind: 'string', required: true });
    expect(fields.find((f) => f.name === 'valueField')!.required).toBe(false);
    expect(fields.find((f) => f.name === 'flushIntervalMs')!.label).toBe('Flush interval (ms)');
  });

  it('a filter value takes text, numbers or booleans; map steps are JSON; count has no settings', () => {
    expect(settingsFields(operatorCatalog.filter.settings).find((f) => f.name === 'value')!.kind).toBe('scalar');
    expect(settingsFields(operatorCatalog.map.settings)).toMatchObject([{ name: 'steps', kind: 'json', required: true }]);
    expect(settingsFields(operatorCatalog.count.settings)).toEqual([]);
  });

  it('inputs become setting values; empty leaves the setting out so its default applies', () => {
    expect(parseFieldInput({ kind: 'integer' }, '42')).toBe(42);
    expect(parseFieldInput({ kind: 'integer' }, '')).toBeUndefined();
    expect(parseFieldInput({ kind: 'number' }, 'abc')).toBe('abc');
    expect(parseFieldInput({ kind: 'scalar' }, 'true')).toBe(true);
    expect(parseFieldInput({ kind: 'scalar' }, '12.5')).toBe(12.5);
    expect(parseFieldInput({ kind: 'scalar' }, 'user-42')).toBe('user-42');
    expect(parseFieldInput({ kind: 'string' }, 'counts')).toBe('counts');
  });

  it('labels read as words', () => {
    expect(humanize('zipfExponent')).toBe('Zipf exponent');
    expect(humanize('keyField')).toBe('Key field');
  });
});
