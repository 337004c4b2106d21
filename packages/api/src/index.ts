export * from './rest.ts';
export * from './events.ts';
export * from './auth.ts';
export * from './connections.ts';
export * from './client.ts';
export * from './operators.ts';
