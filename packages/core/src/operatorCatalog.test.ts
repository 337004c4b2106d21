import { describe, expect, it } from 'vitest';
import { EventGenerator } from './generator.ts';
import { GENERATOR_FIELDS, operatorSpec, sourceEventTime } from './operatorCatalog.ts';

const outputs = (type: string, input?: string[]) => operatorSpec(type)!.outputFields({}, input);

describe('the catalog says which fields an operator emits', () => {
  it('a generator’s fields are those of its events', () => {
    const event = new EventGenerator({ seed: 1, keys: 10, skew: 'uniform', zipfExponent: 1, splits: 4 }).eventAt(0);
    expect(Object.keys(event)).toEqual(GENERATOR_FIELDS);
    expect(outputs('generator')).toEqual(GENERATOR_FIELDS);
  });

  it('sinks emit nothing; a transform of unknown input emits unknown fields', () => {
    expect(outputs('log', ['a'])).toEqual([]);
    expect(outputs('postgres', ['a'])).toEqual([]);
    expect(outputs('filter')).toBeUndefined();
    expect(outputs('map')).toBeUndefined();
  });
});

describe('a source’s event time comes with its own defaults', () => {
  it('broker sources whose messages carry no time default to ingestion time; the generator to its ts field; a setting wins', () => {
    expect(sourceEventTime({ type: 'mqtt', settings: { connection: 'm', topics: 'a/#' } }).timestamps).toBe('ingestion');
    expect(sourceEventTime({ type: 'http', settings: { name: 'orders' } }).timestamps).toBe('ingestion');
    expect(sourceEventTime({ type: 'postgresCdc', settings: { connection: 'p', publication: 'pub', slot: 's' } }).timestamps).toBe('ingestion');
    expect(sourceEventTime({ type: 'generator', settings: {} })).toMatchObject({ timestamps: 'field', timestampField: 'ts' });
    expect(sourceEventTime({ type: 'mqtt', settings: { connection: 'm', topics: 'a/#', timestamps: 'field', timestampField: 'at' } })).toMatchObject({
      timestamps: 'field',
      timestampField: 'at',
    });
  });

  it('a source’s splits bound its parallelism: one per subject, stream key, partition or topic filter', () => {
    expect(operatorSpec('nats')!.splits!({ connection: 'n', stream: 'S', subjects: 'a, b, c' })).toBe(3);
    expect(operatorSpec('nats')!.splits!({ connection: 'n', stream: 'S' })).toBe(1);
    expect(operatorSpec('redisStream')!.splits!({ streams: 'x,y' })).toBe(2);
    expect(operatorSpec('http')!.splits!({ name: 'orders', partitions: 8 })).toBe(8);
    expect(operatorSpec('postgresCdc')!.splits!({ connection: 'p', publication: 'pub', slot: 's' })).toBe(1);
  });
});
