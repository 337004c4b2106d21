export { startWorker, type WorkerHandle } from './worker.ts';
export { workerEnv, type WorkerEnv } from './env.ts';
