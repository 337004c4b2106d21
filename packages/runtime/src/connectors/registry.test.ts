import type { Vertex } from '@keyflow/core';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { redisKeys } from '../keys.ts';
import { silentLogger } from '../logger.ts';
import { GeneratorSource } from './generatorSource.ts';
import { LogSink } from './logSink.ts';
import { createSink, createSource, type ConnectorEnv } from './registry.ts';

const env: ConnectorEnv = {
  index: 0,
  parallelism: 2,
  sink: { jobId: 'j', attempt: 1, index: 0 },
  redis: new Redis({ lazyConnect: true }),
  keys: redisKeys('t'),
  databaseUrl: 'postgresql://nowhere/db',
  deadLetter: () => {},
  connection: (name) => Promise.reject(new Error(`no connection ${name}`)),
  logger: silentLogger,
};
const vertex = (type: string, settings: object = {}): Vertex => ({ id: 'v', type, name: type, parallelism: 1, settings }) as unknown as Vertex;

describe('connector registry', () => {
  it('makes sources and sinks by vertex type, with their settings parsed', () => {
    const source = createSource(vertex('generator', { splits: 4 }), env);
    expect(source).toBeInstanceOf(GeneratorSource);
    expect(source.splits).toEqual([0, 1]);
    expect(createSink(vertex('log'), env)).toBeInstanceOf(LogSink);
  });

  it('refuses a type it does not know, also one that names an object property', () => {
    expect(() => createSource(vertex('kafka'), env)).toThrow('unknown source type kafka');
    expect(() => createSink(vertex('toString'), env)).toThrow('unknown sink type toString');
  });
});
