import { describe, expect, it } from 'vitest';
import { EventGenerator } from './generator.ts';
import { GENERATOR_FIELDS, operatorSpec } from './operatorCatalog.ts';

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
