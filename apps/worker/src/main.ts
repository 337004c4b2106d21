import { workerEnv } from './env.ts';
import { startWorker } from './worker.ts';

const env = workerEnv.parse(process.env);
const worker = await startWorker(env, {
  batchSize: env.KEYFLOW_BATCH_SIZE,
  bound: env.KEYFLOW_CHANNEL_BOUND,
  inFlight: env.KEYFLOW_CHANNEL_IN_FLIGHT,
  debloatMs: env.KEYFLOW_CHANNEL_DEBLOAT_MS,
  lingerMs: env.KEYFLOW_LINGER_MS,
});

let closing = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    if (closing) return;
    closing = true;
    void worker.close().then(() => process.exit(0));
  });
