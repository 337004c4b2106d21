import { startControl } from './control.ts';
import { controlEnv } from './env.ts';

const control = await startControl(controlEnv.parse(process.env));

let closing = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    if (closing) return;
    closing = true;
    void control.close().then(() => process.exit(0));
  });
