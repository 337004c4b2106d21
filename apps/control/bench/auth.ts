// `npm run bench:auth`: what authentication costs a request. One control plane (no workers) on a fresh database;
// each run times REQUESTS sequential requests of each kind from this process: the open health check (Postgres and
// Redis pinged, no credentials), `GET /api/me` with an API key (better-auth verifies its hash and writes its last
// use) and with a session cookie (the session and its user read). `/api/me` does no work of its own, so its time
// less the health check's is about what the credentials cost. BENCH_RUNS runs (3); median, min and max of the runs'
// mean milliseconds. Output: docs/benchmarks/auth.json.
import { loadavg } from 'node:os';
import { dropDatabase } from '@keyflow/db/testing';
import { benchDatabase, machine, spread, stats, writeResult } from './setup.ts';
import { startStack } from '../test/harness.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 500);
const ORIGIN = 'http://127.0.0.1:3000';

// No workers, so no sinks: no sink role either.
const dbUrl = await benchDatabase({ sinkRole: false });

/** Mean milliseconds of `REQUESTS` sequential GETs of `path` with `headers`, each answered `status`. */
async function meanMs(url: string, headers: Record<string, string>, status: number): Promise<number> {
  for (let i = 0; i < 20; i++) await fetch(url, { headers }).then((r) => r.arrayBuffer()); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < REQUESTS; i++) {
    const res = await fetch(url, { headers });
    await res.arrayBuffer();
    if (res.status !== status) throw new Error(`${url} answered ${res.status}`);
  }
  return (performance.now() - t0) / REQUESTS;
}

const stack = await startStack({ workers: 0, env: { KEYFLOW_DASHBOARD_URL: ORIGIN, KEYFLOW_SIGNIN_PER_MINUTE: '1000' } });
try {
  const signIn = await fetch(`${stack.url}/api/auth/sign-in/email`, {
    method: 'POST',
    headers: { origin: ORIGIN, 'content-type': 'application/json' },
    body: JSON.stringify({ email: stack.admin.email, password: stack.admin.password }),
  });
  const cookie = signIn.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  const runs: { loadBefore: number; openMs: number; keyMs: number; sessionMs: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const loadBefore = Number(loadavg()[0]!.toFixed(2));
    const openMs = await meanMs(`${stack.url}/api/health`, {}, 200);
    const keyMs = await meanMs(`${stack.url}/api/me`, { authorization: `Bearer ${stack.token}` }, 200);
    const sessionMs = await meanMs(`${stack.url}/api/me`, { cookie }, 200);
    runs.push({ loadBefore, openMs: Number(openMs.toFixed(2)), keyMs: Number(keyMs.toFixed(2)), sessionMs: Number(sessionMs.toFixed(2)) });
    console.log(`run ${i + 1}: open ${openMs.toFixed(2)} ms, API key ${keyMs.toFixed(2)} ms, session ${sessionMs.toFixed(2)} ms per request`);
  }
  const result = {
    ...machine(),
    requestsPerKind: REQUESTS,
    runs,
    openMs: stats(
      runs.map((r) => r.openMs),
      2,
    ),
    apiKeyMs: stats(
      runs.map((r) => r.keyMs),
      2,
    ),
    sessionMs: stats(
      runs.map((r) => r.sessionMs),
      2,
    ),
  };
  const f = spread;
  console.log(`median (min–max) of ${RUNS}, ms per request: open ${f(result.openMs)}, API key ${f(result.apiKeyMs)}, session ${f(result.sessionMs)}`);
  writeResult('auth.json', result);
} finally {
  await stack.close();
  await dropDatabase(dbUrl);
}
process.exit(0);
