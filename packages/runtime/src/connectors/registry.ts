import {
  generatorSettings,
  httpSourceSettings,
  logSinkSettings,
  mqttSourceSettings,
  natsSinkSettings,
  natsSourceSettings,
  nexmarkSettings,
  postgresCdcSettings,
  postgresSinkSettings,
  redisStreamSinkSettings,
  redisStreamSourceSettings,
  webhookSinkSettings,
  type Vertex,
} from '@keyflow/core';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../keys.ts';
import type { Logger } from '../logger.ts';
import { connectorRedis, type ConnectionResolver } from './connection.ts';
import { NatsSink } from './natsSink.ts';
import { NatsSource } from './natsSource.ts';
import { RedisStreamSink } from './redisStreamSink.ts';
import { RedisStreamSource } from './redisStreamSource.ts';
import { BlackholeSink } from './blackholeSink.ts';
import { GeneratorSource } from './generatorSource.ts';
import { HttpSource } from './httpSource.ts';
import { LogSink } from './logSink.ts';
import { MqttSource } from './mqttSource.ts';
import { NexmarkSource } from './nexmarkSource.ts';
import { PostgresCdcSource } from './postgresCdcSource.ts';
import { PostgresSink } from './postgresSink.ts';
import type { Sink, SinkContext } from './sink.ts';
import type { Source } from './source.ts';
import { WebhookSink } from './webhookSink.ts';

/** What a connector may use of its subtask. */
export interface ConnectorEnv {
  index: number;
  parallelism: number;
  /** The sink's context (job, attempt, what it recovers from); see SinkContext. */
  sink: Omit<SinkContext, 'vertexId'>;
  redis: Redis;
  keys: RedisKeys;
  /** Where postgres sinks write: KEYFLOW_SINK_DATABASE_URL (a restricted role of their own), else DATABASE_URL. */
  databaseUrl: string;
  /** Sends a record the connector cannot take to the operator's dead letters, with the reason. */
  deadLetter: (record: unknown, reason: string) => void;
  /** Looks up a connection profile by name. */
  connection: ConnectionResolver;
  logger: Logger;
}

type SourceFactory = (vertex: Vertex, env: ConnectorEnv) => Source;
type SinkFactory = (vertex: Vertex, env: ConnectorEnv) => Sink;

/** Sources by vertex type: a new connector is one entry here. */
const sources = new Map<string, SourceFactory>([
  ['generator', (v, env) => new GeneratorSource(generatorSettings.parse(v.settings), env.index, env.parallelism)],
  ['nexmark', (v, env) => new NexmarkSource(nexmarkSettings.parse(v.settings), env.index, env.parallelism)],
  [
    'redisStream',
    (v, env) => {
      const s = redisStreamSourceSettings.parse(v.settings);
      const connect = () => connectorRedis(env.redis, env.connection, s.connection, { maxRetriesPerRequest: null });
      return RedisStreamSource.fromSettings(s, connect, env.index, env.parallelism, env.deadLetter, env.logger);
    },
  ],
  [
    'postgresCdc',
    (v, env) => {
      const s = postgresCdcSettings.parse(v.settings);
      return PostgresCdcSource.fromSettings(s, () => env.connection(s.connection), env.index, env.parallelism, env.deadLetter, env.logger);
    },
  ],
  [
    'nats',
    (v, env) => {
      const s = natsSourceSettings.parse(v.settings);
      return NatsSource.fromSettings(s, () => env.connection(s.connection), env.index, env.parallelism, env.deadLetter, env.logger);
    },
  ],
  [
    'mqtt',
    (v, env) => {
      const s = mqttSourceSettings.parse(v.settings);
      const session = { jobId: env.sink.jobId, vertexId: v.id };
      return MqttSource.fromSettings(s, () => env.connection(s.connection), session, env.index, env.parallelism, env.deadLetter, env.logger);
    },
  ],
  [
    'http',
    (v, env) => {
      const s = httpSourceSettings.parse(v.settings);
      const connect = async () => env.redis.duplicate({ maxRetriesPerRequest: null });
      return new HttpSource(s, env.keys, env.redis, connect, env.index, env.parallelism, env.deadLetter, env.logger);
    },
  ],
]);

/** Sinks by vertex type: a new connector is one entry here. */
const sinks = new Map<string, SinkFactory>([
  [
    'webhook',
    (v, env) =>
      new WebhookSink(webhookSinkSettings.parse(v.settings), { ...env.sink, vertexId: v.id }, env.connection, env.logger.child({ vertexId: v.id })),
  ],
  [
    'postgres',
    (v, env) => new PostgresSink(postgresSinkSettings.parse(v.settings), env.databaseUrl, { ...env.sink, vertexId: v.id }, env.deadLetter),
  ],
  [
    'redisStreamSink',
    (v, env) => {
      const s = redisStreamSinkSettings.parse(v.settings);
      const connect = () => connectorRedis(env.redis, env.connection, s.connection);
      return new RedisStreamSink(s, env.databaseUrl, { ...env.sink, vertexId: v.id }, connect);
    },
  ],
  [
    'natsSink',
    (v, env) => {
      const s = natsSinkSettings.parse(v.settings);
      return new NatsSink(s, () => env.connection(s.connection), env.databaseUrl, { ...env.sink, vertexId: v.id }, env.logger);
    },
  ],
  ['blackhole', () => new BlackholeSink()],
  ['log', (v, env) => new LogSink(logSinkSettings.parse(v.settings), env.redis, env.keys.sample(env.sink.jobId, v.id))],
]);

export function createSource(vertex: Vertex, env: ConnectorEnv): Source {
  const make = sources.get(vertex.type);
  if (!make) throw new Error(`unknown source type ${vertex.type}`);
  return make(vertex, env);
}

export function createSink(vertex: Vertex, env: ConnectorEnv): Sink {
  const make = sinks.get(vertex.type);
  if (!make) throw new Error(`unknown sink type ${vertex.type}`);
  return make(vertex, env);
}
