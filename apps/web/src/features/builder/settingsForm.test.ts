import { operatorCatalog } from '@keyflow/core';
import { describe, expect, it } from 'vitest';
import { humanize, numberRule, parseFieldInput, settingsFields, settingsFieldsOf } from './settingsForm';

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
    const optional = { required: false } as const;
    expect(parseFieldInput({ kind: 'integer', ...optional }, '42')).toEqual({ ok: true, value: 42 });
    expect(parseFieldInput({ kind: 'integer', ...optional }, '')).toEqual({ ok: true, value: undefined });
    expect(parseFieldInput({ kind: 'scalar', ...optional }, 'true')).toEqual({ ok: true, value: true });
    expect(parseFieldInput({ kind: 'scalar', ...optional }, '12.5')).toEqual({ ok: true, value: 12.5 });
    expect(parseFieldInput({ kind: 'scalar', ...optional }, 'user-42')).toEqual({ ok: true, value: 'user-42' });
    expect(parseFieldInput({ kind: 'string', ...optional }, 'counts')).toEqual({ ok: true, value: 'counts' });
    expect(parseFieldInput({ kind: 'json', ...optional }, '[{"op":"drop","fields":["ts"]}]')).toEqual({
      ok: true,
      value: [{ op: 'drop', fields: ['ts'] }],
    });
    expect(parseFieldInput({ kind: 'json', ...optional }, '[{"op":')).toEqual({ ok: false, message: 'not valid JSON yet' });
  });

  it('a number field’s text that is no valid value says why, with the schema’s bounds', () => {
    const fields = settingsFieldsOf('generator');
    const field = (name: string) => fields.find((f) => f.name === name)!;
    expect(parseFieldInput(field('splits'), '2.5')).toEqual({ ok: false, message: 'a whole number from 1 to 1024' });
    expect(parseFieldInput(field('total'), '0')).toEqual({ ok: false, message: 'a whole number, at least 1' });
    expect(parseFieldInput(field('rate'), '-1')).toEqual({ ok: false, message: 'at least 0' });
    expect(parseFieldInput(field('zipfExponent'), 'abc')).toEqual({ ok: false, message: 'a number from 0.1 to 5' });
    expect(parseFieldInput(field('seed'), '-3')).toEqual({ ok: true, value: -3 });
    expect(numberRule(settingsFieldsOf('postgres').find((f) => f.name === 'flushIntervalMs')!)).toEqual({
      integer: true,
      required: false,
      min: 50,
      max: 60_000,
    });
    expect(settingsFieldsOf('mystery')).toEqual([]);
  });

  it('labels read as words', () => {
    expect(humanize('zipfExponent')).toBe('Zipf exponent');
    expect(humanize('keyField')).toBe('Key field');
  });
});
