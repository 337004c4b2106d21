import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { webhookSinkSettings, type Rec } from '@keyflow/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.ts';
import { isTransient } from './postgresSink.ts';
import type { ConnectionProfile } from './connection.ts';
import { sinkErrorIsTransient, type SinkContext } from './sink.ts';
import { WebhookDeliveryError, WebhookSink } from './webhookSink.ts';

/** A request the receiver got: its headers and the records of its body. */
interface Received {
  at: number;
  headers: IncomingMessage['headers'];
  records: Rec[];
  /** Requests answered before this one came. */
  answeredBefore: number;
}

/** How the receiver answers the n-th request (0-based): a status (with headers and body), or never. */
type Answer = { status: number; headers?: Record<string, string>; body?: string } | 'hang';

let server: Server;
let base: string;
let received: Received[] = [];
let answer: (n: number) => Answer | Promise<Answer> = () => ({ status: 200 });
let answered = 0;
const hanging: ServerResponse[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const n = received.length;
      const records = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Rec[];
      received.push({ at: Date.now(), headers: req.headers, records, answeredBefore: answered });
      const a = await answer(n);
      if (a === 'hang') return void hanging.push(res);
      res.writeHead(a.status, a.headers).end(a.body ?? '', () => answered++);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(() => {
  received = [];
  answered = 0;
  answer = () => ({ status: 200 });
  for (const res of hanging.splice(0)) res.destroy();
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const ctx: SinkContext = { jobId: 'job-1', vertexId: 'hook', attempt: 1, index: 0, recoverFrom: 0 };
const fast = { baseDelayMs: 20, maxDelayMs: 200 };

function sink(settings: Record<string, unknown> = {}, opts: { ctx?: SinkContext; warnings?: object[]; profile?: Partial<ConnectionProfile> } = {}) {
  const profile: ConnectionProfile = {
    name: 'receiver',
    kind: 'http',
    url: `${base}/hook?token=in-the-query`,
    headers: { Authorization: 'Bearer s3cret', 'X-Team': 'data' },
    ...opts.profile,
  };
  const log = { ...silentLogger, warn: (fields: object) => void opts.warnings?.push(fields) };
  return new WebhookSink(
    webhookSinkSettings.parse({ connection: 'receiver', ...settings }),
    opts.ctx ?? ctx,
    async (name) => (name === profile.name ? profile : Promise.reject(new Error(`no connection ${name}`))),
    log,
    fast,
  );
}

const recs = (n: number, from = 0): Rec[] => Array.from({ length: n }, (_, i) => ({ key: `k${from + i}`, count: from + i }));
const keyOf = (r: Received) => r.headers['idempotency-key'] as string;

/** What a promise rejects with (it must reject). */
async function failureOf(p: Promise<unknown>): Promise<WebhookDeliveryError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'it should have failed').toBeInstanceOf(WebhookDeliveryError);
  return err as WebhookDeliveryError;
}

describe('webhook sink', () => {
  it('POSTs batches of at most batchSize as JSON arrays, with the profile’s headers and an idempotency key each', async () => {
    const s = sink({ batchSize: 3 });
    await s.open();
    for (const r of recs(7)) s.process(r);
    await s.flush();
    expect(received.map((r) => r.records)).toEqual([recs(3), recs(3, 3), recs(1, 6)]);
    for (const r of received) {
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers.authorization).toBe('Bearer s3cret');
      expect(r.headers['x-team']).toBe('data');
      expect(keyOf(r)).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(new Set(received.map(keyOf)).size).toBe(3);
    // Nothing buffered: nothing sent.
    await s.flush();
    expect(received).toHaveLength(3);
    await s.close();
  });

  it('gives the same batch at the same place the same key (a replay), and the same bytes elsewhere another', async () => {
    const first = sink({ batchSize: 2 });
    await first.open();
    for (const r of [...recs(2), ...recs(2)]) first.process(r);
    await first.flush();
    // The same records, replayed from the same checkpoint by a new attempt.
    const replay = sink({ batchSize: 2 }, { ctx: { ...ctx, attempt: 2 } });
    await replay.open();
    for (const r of recs(2)) replay.process(r);
    await replay.flush();
    const [a, b, c] = received.map(keyOf);
    expect(b).not.toBe(a);
    expect(c).toBe(a);
    // Records after another checkpoint, or of another subtask, are other data.
    const later = sink({ batchSize: 2 });
    await later.open();
    for (const r of recs(2)) later.process(r);
    await later.preCommit(5);
    for (const r of recs(2)) later.process(r);
    await later.flush();
    const other = sink({ batchSize: 2 }, { ctx: { ...ctx, index: 1 } });
    await other.open();
    for (const r of recs(2)) other.process(r);
    await other.flush();
    const [sameAgain, afterCheckpoint, otherSubtask] = received.slice(3).map(keyOf);
    expect(sameAgain).toBe(a);
    expect(new Set([a, afterCheckpoint, otherSubtask]).size).toBe(3);
    await Promise.all([first, replay, later, other].map((x) => x.close()));
  });

  it('retries 503 with backoff until the receiver takes the batch: one delivery per attempt, the same key, retries logged', async () => {
    answer = (n) => (n < 2 ? { status: 503, body: 'busy' } : { status: 200 });
    const warnings: object[] = [];
    const s = sink({ batchSize: 10, maxRetries: 3 }, { warnings });
    await s.open();
    for (const r of recs(4)) s.process(r);
    await s.preCommit(1);
    expect(received).toHaveLength(3);
    expect(received.map((r) => r.records)).toEqual([recs(4), recs(4), recs(4)]);
    expect(new Set(received.map(keyOf)).size).toBe(1);
    expect(warnings).toEqual([
      expect.objectContaining({ attempt: 1, status: 503, error: '503 Service Unavailable: busy' }),
      expect.objectContaining({ attempt: 2, status: 503 }),
    ]);
    await s.close();
  });

  it('honours a 429’s Retry-After', async () => {
    answer = (n) => (n === 0 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 });
    const s = sink();
    await s.open();
    s.process({ key: 'a' });
    await s.flush();
    expect(received).toHaveLength(2);
    expect(received[1]!.at - received[0]!.at).toBeGreaterThanOrEqual(950);
    await s.close();
  });

  it('times out a receiver that never answers, retries, then fails naming the URL and why (without its secrets)', async () => {
    answer = () => 'hang';
    const s = sink({ timeout: '150ms', maxRetries: 2 });
    await s.open();
    s.process({ key: 'a' });
    const err = await failureOf(s.flush());
    expect(received).toHaveLength(3);
    expect(err.message).toBe(`webhook ${base}/hook failed to take a batch of 1 records in 3 attempts; the last: no answer within 150 ms`);
    expect(err.message).not.toMatch(/s3cret|in-the-query/);
    // The subtask's sink driver takes it as a failure for good: the subtask fails and the job recovers.
    expect(sinkErrorIsTransient(err, isTransient)).toBe(false);
    // A later send fails with it rather than overtaking the batch that failed.
    s.process({ key: 'b' });
    expect(await failureOf(s.preCommit(1))).toBe(err);
    expect(received).toHaveLength(3);
    await s.close();
  });

  it('fails at once when the receiver refuses the data (400): not retried, with the status and the receiver’s reason', async () => {
    answer = () => ({ status: 400, body: '{"error":"field amount is required"}' });
    const s = sink({ maxRetries: 5 });
    await s.open();
    for (const r of recs(3)) s.process(r);
    const err = await failureOf(s.flush());
    expect(received).toHaveLength(1);
    expect(err.status).toBe(400);
    expect(err.message).toBe(
      `webhook ${base}/hook refused a batch of 3 records: 400 Bad Request: {"error":"field amount is required"} (not retried: the receiver would refuse it again)`,
    );
    expect(sinkErrorIsTransient(err, isTransient)).toBe(false);
    await s.close();
  });

  it('does not follow a redirect (it would turn the POST into a GET)', async () => {
    answer = () => ({ status: 302, headers: { location: '/elsewhere' } });
    const s = sink();
    await s.open();
    s.process({ key: 'a' });
    expect((await failureOf(s.flush())).status).toBe(302);
    expect(received).toHaveLength(1);
    await s.close();
  });

  it('delivers in order: a barrier’s pre-commit waits for the periodic write in flight, and covers what came before it', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    answer = async (n) => {
      if (n === 0) await held;
      return { status: 200 };
    };
    const s = sink({ batchSize: 100 });
    await s.open();
    const done: string[] = [];
    s.process({ key: 'a' });
    const periodic = s.flush().then(() => done.push('flush'));
    s.process({ key: 'b' });
    const barrier = s.preCommit(1).then(() => done.push('pre-commit'));
    await waitUntil(() => received.length === 1);
    release();
    await Promise.all([periodic, barrier]);
    expect(received.map((r) => r.records)).toEqual([[{ key: 'a' }], [{ key: 'b' }]]);
    // b was sent only once a was taken.
    expect(received[1]!.answeredBefore).toBe(1);
    expect(done).toEqual(['flush', 'pre-commit']);
    await s.close();
  });

  it('refuses a connection that is not an http one', async () => {
    const s = sink({}, { profile: { kind: 'nats', url: 'nats://127.0.0.1:4222' } });
    await expect(s.open()).rejects.toThrow("connection 'receiver' is a nats connection; a webhook needs an http one");
  });
});

async function waitUntil(ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
