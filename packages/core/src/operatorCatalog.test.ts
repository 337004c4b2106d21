import { describe, expect, it } from 'vitest';
import { EventGenerator } from './generator.ts';
import { GENERATOR_FIELDS, operatorSpec, ownClockVertices, sourceEventTime } from './operatorCatalog.ts';

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

  it('a generated source’s event time is its own clock, and so is that of everything downstream of such sources only', () => {
    const graph = (clicks: Record<string, unknown>) => ({
      vertices: [
        { id: 'clicks', type: 'generator', settings: clicks },
        { id: 'bids', type: 'nexmark', settings: {} },
        { id: 'orders', type: 'nats', settings: { connection: 'n', stream: 'S' } },
        { id: 'perUser', type: 'window', settings: {} },
        { id: 'joined', type: 'join', settings: {} },
        { id: 'sink', type: 'log', settings: {} },
      ],
      edges: [
        { from: 'clicks', to: 'perUser' },
        { from: 'perUser', to: 'joined' },
        { from: 'bids', to: 'joined' },
        { from: 'orders', to: 'sink' },
        { from: 'joined', to: 'sink' },
      ],
    });
    // The sink also reads a broker's messages, whose time is the wall clock's.
    expect([...ownClockVertices(graph({}))].sort()).toEqual(['bids', 'clicks', 'joined', 'perUser']);
    // A generator on ingestion time runs on the wall clock, and so does what it feeds.
    expect([...ownClockVertices(graph({ timestamps: 'ingestion' }))].sort()).toEqual(['bids']);
  });

  it('a generated clock follows the wall clock only from a start time set (a template’s) and at its pace', () => {
    const startAt = '2026-11-30T06:00:00.000Z';
    const own = (type: string, settings: Record<string, unknown>) => operatorSpec(type)!.ownClock!(settings);
    expect(own('generator', {})).toBe(true); // from 2026-01-01: "lag 333d" meant nothing
    expect(own('generator', { startAt, rate: 1000 })).toBe(false);
    expect(own('generator', { startAt, rate: 100, msPerEvent: 10 })).toBe(false);
    expect(own('generator', { startAt, rate: 2000 })).toBe(true); // two seconds of event time a second
    expect(own('generator', { startAt, rate: 0 })).toBe(true); // as fast as it can
    expect(own('nexmark', {})).toBe(true);
    expect(own('nexmark', { startAt, rate: 50_000 })).toBe(false);
    expect(own('nexmark', { startAt, rate: 50_000, eventsPerSecond: 1_000_000 })).toBe(true);
  });
});
