export * from './keys.ts';
export * from './protocol.ts';
export * from './scripts.ts';
export * from './channels.ts';
export * from './checkpointStorage.ts';
export * from './subtask.ts';
export type { Sink } from './connectors/sink.ts';
