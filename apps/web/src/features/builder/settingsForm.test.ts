import { operatorCatalog } from '@keyflow/core';
import { describe, expect, it } from 'vitest';
import { durationReadout, humanize, numberRule, parseFieldInput, settingsFields, settingsFieldsOf, type SettingsField } from './settingsForm';

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
      ['msPerEvent', 'number'],
      ['outOfOrderness', 'duration'],
      ['idleSplits', 'integer'],
      ['startAt', 'string'],
      ['lateEvery', 'integer'],
      ['lateBy', 'duration'],
      ['timestamps', 'enum'],
      ['timestampField', 'string'],
      ['watermarkDelay', 'duration'],
      ['watermarkInterval', 'duration'],
      ['idleTimeout', 'duration'],
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

  it('durations are text fields that keep what was typed; their defaults are durations too', () => {
    const fields = settingsFieldsOf('window');
    expect(fields.map((f) => [f.name, f.kind])).toEqual([
      ['assigner', 'enum'],
      ['size', 'duration'],
      ['slide', 'duration'],
      ['gap', 'duration'],
      ['offset', 'duration'],
      ['time', 'enum'],
      ['aggregates', 'string'],
      ['allowedLateness', 'duration'],
    ]);
    expect(fields.find((f) => f.name === 'size')).toMatchObject({ defaultValue: '1m', required: false, label: 'Size' });
    expect(settingsFieldsOf('generator').find((f) => f.name === 'watermarkInterval')!.defaultValue).toBe('200ms');
  });

  it.each([
    ['500ms', 500],
    ['10s', 10_000],
    [' 1m ', 60_000],
    ['1.5h', 5_400_000],
    ['250', 250],
  ])('a duration %j is kept as typed and reads as %d ms', (text, ms) => {
    const size = settingsFieldsOf('window').find((f) => f.name === 'size')!;
    expect(parseFieldInput(size, text)).toEqual({ ok: true, value: text.trim() });
    expect(durationReadout(text)).toBe(`${text.trim()} = ${ms.toLocaleString('en-US')} ms`);
  });

  it('a duration that is none, or out of its bounds, says why', () => {
    const field = (type: string, name: string) => settingsFieldsOf(type).find((f) => f.name === name)!;
    const format = { ok: false, message: 'a duration such as 500ms, 10s, 1m or 1.5h' };
    expect(parseFieldInput(field('window', 'size'), '10x')).toEqual(format);
    expect(parseFieldInput(field('window', 'size'), 's')).toEqual(format);
    expect(parseFieldInput(field('window', 'size'), '1e3s')).toEqual(format);
    expect(parseFieldInput(field('generator', 'outOfOrderness'), '-5s')).toEqual({ ok: false, message: 'may not be negative' });
    expect(parseFieldInput(field('window', 'size'), '0s')).toEqual({ ok: false, message: '0s is shorter than 1ms' });
    expect(parseFieldInput(field('generator', 'watermarkInterval'), '2m')).toEqual({ ok: false, message: '2m is longer than 1m' });
    // A signed one (the window offset) takes a negative duration.
    expect(parseFieldInput(field('window', 'offset'), '-8h')).toEqual({ ok: true, value: '-8h' });
    // Empty leaves an optional duration out (its default applies); a required one says so.
    expect(parseFieldInput(field('window', 'size'), '')).toEqual({ ok: true, value: undefined });
    expect(parseFieldInput({ ...field('window', 'size'), required: true }, ' ')).toEqual({ ok: false, message: 'required' });
    expect(durationReadout('10x')).toBeUndefined();
    expect(durationReadout('')).toBeUndefined();
  });

  it('the joins: their windows and bounds are durations; the interval join’s signed bounds take negative ones', () => {
    expect(settingsFieldsOf('windowJoin').map((f) => [f.name, f.kind])).toEqual([
      ['assigner', 'enum'],
      ['size', 'duration'],
      ['slide', 'duration'],
      ['offset', 'duration'],
    ]);
    const fields = settingsFieldsOf('intervalJoin');
    expect(fields.map((f) => [f.name, f.kind, f.defaultValue])).toEqual([
      ['lower', 'duration', '0ms'],
      ['upper', 'duration', '10s'],
    ]);
    const [lower, upper] = fields as [SettingsField, SettingsField];
    expect(parseFieldInput(lower, '-5s')).toEqual({ ok: true, value: '-5s' });
    expect(parseFieldInput(upper, '-500ms')).toEqual({ ok: true, value: '-500ms' });
    expect(durationReadout('-5s')).toBe('-5s = -5,000 ms');
    expect(parseFieldInput(lower, '-5x')).toEqual({ ok: false, message: 'a duration such as 500ms, 10s, 1m or 1.5h' });
  });

  it('a connector’s connection is a field of its own, of the kind of connection it takes; empty leaves it out', () => {
    expect(settingsFieldsOf('nats').map((f) => [f.name, f.kind])).toEqual([
      ['connection', 'connection'],
      ['stream', 'string'],
      ['subjects', 'string'],
      ['format', 'enum'],
      ['start', 'enum'],
      ['timestamps', 'enum'],
      ['timestampField', 'string'],
      ['watermarkDelay', 'duration'],
      ['watermarkInterval', 'duration'],
      ['idleTimeout', 'duration'],
    ]);
    expect(settingsFieldsOf('nats')[0]).toMatchObject({ connectionKind: 'nats', required: true, label: 'Connection' });
    // Keyflow's own Redis when left empty.
    expect(settingsFieldsOf('redisStream')[0]).toMatchObject({ kind: 'connection', connectionKind: 'redis', required: false });
    expect(
      ['natsSink', 'redisStreamSink', 'postgresCdc', 'mqtt', 'webhook'].map(
        (type) => settingsFieldsOf(type).find((f) => f.kind === 'connection')?.connectionKind,
      ),
    ).toEqual(['nats', 'redis', 'postgres', 'mqtt', 'http']);
    const connection = settingsFieldsOf('nats')[0]!;
    expect(parseFieldInput(connection, 'orders-nats')).toEqual({ ok: true, value: 'orders-nats' });
    expect(parseFieldInput(connection, '')).toEqual({ ok: true, value: undefined });
  });

  it('labels read as words', () => {
    expect(humanize('zipfExponent')).toBe('Zipf exponent');
    expect(humanize('keyField')).toBe('Key field');
  });
});
