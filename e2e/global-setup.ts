import type { FullConfig } from '@playwright/test';
import { startE2eStack } from './stack';

/** Starts the whole stack once for every browser test; the returned function tears it down. */
export default async function globalSetup(_config: FullConfig) {
  const stack = await startE2eStack((line) => console.log(`[e2e] ${line}`));
  process.env.KEYFLOW_WEB_URL = stack.webUrl;
  process.env.KEYFLOW_CONTROL_URL = stack.controlUrl;
  process.env.KEYFLOW_E2E_USERS = JSON.stringify(stack.users);
  process.env.KEYFLOW_E2E_SINK_DATABASE_URL = stack.sinkDatabaseUrl;
  return () => stack.stop();
}
