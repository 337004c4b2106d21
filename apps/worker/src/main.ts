import { workerEnv } from './env.ts';
import { startWorker } from './worker.ts';

const worker = await startWorker(workerEnv.parse(process.env));

let closing = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    if (closing) return;
    closing = true;
    void worker.close().then(() => process.exit(0));
  });
