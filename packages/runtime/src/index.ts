export * from './keys.ts';
export * from './protocol.ts';
export * from './scripts.ts';
export * from './channels.ts';
export * from './checkpointStorage.ts';
export * from './subtask.ts';
export { SinkFencedError, type Sink, type SinkContext } from './connectors/sink.ts';
export { PostgresSink, isTransient } from './connectors/postgresSink.ts';
export { watchRedis } from './redisConnection.ts';
