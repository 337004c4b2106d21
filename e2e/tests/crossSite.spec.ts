import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, jobsCanceledAfterEach, test } from './fixtures';

/** A page of another origin that tries, with the visitor's cookies, every change a browser lets it send. */
function attackerPage(dashboard: string, jobId: string): string {
  const paths = [`/api/jobs/${jobId}/stop`, `/api/jobs/${jobId}/cancel`, `/api/jobs/${jobId}/checkpoints`, `/api/jobs/${jobId}/savepoints`];
  return `<!doctype html><html><body>
<iframe name="sink"></iframe>
<form id="form" method="POST" action="${dashboard}/api/jobs/${jobId}/stop" enctype="text/plain" target="sink">
  <input name='{"a":"' value='"}'>
</form>
<script>
const dashboard = ${JSON.stringify(dashboard)};
const paths = ${JSON.stringify(paths)};
const tries = [];
for (const path of paths) {
  // What a page may send anywhere without asking first: no-cors, a "simple" content type, the cookies included.
  tries.push(fetch(dashboard + path, { method: 'POST', mode: 'no-cors', credentials: 'include' }));
  tries.push(fetch(dashboard + path, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: '{}' }));
  // A JSON request needs a CORS preflight, which the control plane never grants another origin.
  tries.push(fetch(dashboard + path, { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json' }, body: '{}' }));
}
window.attack = Promise.allSettled(tries).then((results) => results.map((r) => r.status === 'fulfilled' ? 'sent, ' + r.value.type : 'blocked'));
// Socket.IO over a plain WebSocket, with the cookies: does the control plane open it for this origin?
window.socket = new Promise((resolve) => {
  const ws = new WebSocket(dashboard.replace('http', 'ws') + '/socket.io/?EIO=4&transport=websocket');
  const seen = [];
  ws.onmessage = (m) => { seen.push(String(m.data)); if (String(m.data).startsWith('0')) ws.send('40'); };
  ws.onclose = () => resolve(seen);
  setTimeout(() => { ws.close(); resolve(seen); }, 3000);
});
</script></body></html>`;
}

async function serve(html: string): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(html));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

const started = jobsCanceledAfterEach();

test('a page of another origin, visited while signed in, can neither stop, cancel nor checkpoint a job, nor open the live connection', async ({
  page,
  request,
  requestAs,
  baseURL,
}) => {
  const graph = {
    vertices: [
      { id: 'events', type: 'generator', parallelism: 1, settings: { rate: 50, keys: 10 } },
      { id: 'out', type: 'log', parallelism: 1 },
    ],
    edges: [{ from: 'events', to: 'out', partitioning: 'forward' }],
  };
  const pipeline = await request.post('/api/pipelines', { data: { name: `target-${Date.now().toString(36)}`, graph } });
  // Checkpoints an hour apart: any checkpoint during the test is one the attack made.
  const deployed = await request.post('/api/jobs', { data: { pipelineId: (await pipeline.json()).id, checkpointIntervalMs: 3_600_000 } });
  expect(deployed.status()).toBe(201);
  const jobId: string = (await deployed.json()).id;
  started.push(jobId);
  await expect.poll(async () => (await (await request.get(`/api/jobs/${jobId}`)).json()).state, { timeout: 60_000 }).toBe('RUNNING');

  // Signed in to the dashboard in this browser: its session cookie goes with requests to it.
  await page.goto(`/jobs/${jobId}`);
  await expect(page.getByTestId('live-status')).toHaveText('Live');

  // The control plane's answers to what the browser sent, by the page that sent it. Without the session cookie the
  // answer is 401; a 403 means the cookie went along and the control plane refused the origin all the same.
  let attacker = '';
  const answers: Record<string, number[]> = {};
  page.on('response', (res) => {
    const r = res.request();
    if (r.method() === 'POST' && r.url().includes(`/api/jobs/${jobId}/`)) (answers[attacker] ??= []).push(res.status());
  });

  const { server, port } = await serve(attackerPage(baseURL!, jobId));
  try {
    // Another port of the same host is the same site (the cookie is sent along: only the control plane's own checks
    // stop the attack); localhost is another site altogether.
    for (const origin of [`http://127.0.0.1:${port}`, `http://localhost:${port}`]) {
      attacker = origin;
      await page.goto(`${origin}/`);
      const attempts = await page.evaluate(() => (window as unknown as { attack: Promise<string[]> }).attack);
      expect(attempts.filter((a) => a === 'sent, opaque')).toHaveLength(8);
      expect(attempts.filter((a) => a === 'blocked')).toHaveLength(4);
      const frames = await page.evaluate(() => (window as unknown as { socket: Promise<string[]> }).socket);
      expect(frames.some((f) => f.startsWith('40{'))).toBe(false);
      await page.evaluate(() => (document.getElementById('form') as HTMLFormElement).submit());
      await page.waitForTimeout(1000);
    }
  } finally {
    server.close();
  }

  // Same site: every change (8 fetches, 1 form) arrived with the session and was refused for its origin. Another site: no session.
  expect(answers[`http://127.0.0.1:${port}`]).toEqual(Array(9).fill(403));
  expect(answers[`http://localhost:${port}`]).toEqual(Array(9).fill(401));

  // Nothing happened: the job runs, no checkpoint was taken, and the audit trail has its deploy only.
  await page.waitForTimeout(2000);
  const job = await (await request.get(`/api/jobs/${jobId}`)).json();
  expect(job.state).toBe('RUNNING');
  expect(job.events.map((e: { toState: string }) => e.toState)).not.toContain('STOPPING');
  expect(await (await request.get(`/api/jobs/${jobId}/checkpoints`)).json()).toEqual([]);
  const audit = await (await (await requestAs('admin')).get(`/api/audit?jobId=${jobId}`)).json();
  expect(audit.map((a: { action: string }) => a.action)).toEqual(['job.deploy']);
  // The same requests from the dashboard itself work: the checks refuse the origin, not the action.
  expect((await request.post(`/api/jobs/${jobId}/checkpoints`)).status()).toBe(202);
});
