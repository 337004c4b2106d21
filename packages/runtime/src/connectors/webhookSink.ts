import { createHash, randomUUID } from 'node:crypto';
import type { Rec, WebhookSinkSettings } from '@keyflow/core';
import type { Logger } from '../logger.ts';
import type { ConnectionResolver } from './connection.ts';
import type { Sink, SinkContext } from './sink.ts';

/** How long the first retry waits, before jitter; each further one waits twice as long, up to `maxDelayMs`. */
const BASE_DELAY_MS = 250;
const MAX_DELAY_MS = 30_000;
/** The longest Retry-After honoured: a receiver asking for more is asked again after this. */
const MAX_RETRY_AFTER_MS = 60_000;
/** Characters of a refusing answer's body kept in the error. */
const BODY_SAMPLE = 300;

/** A batch as it is POSTed: the records as a JSON array, and its idempotency key. */
interface Batch {
  body: string;
  key: string;
  records: number;
}

/**
 * A delivery that failed for good: the receiver refused it, or it kept failing through every retry. It is no
 * passing failure (`transient: false`): the subtask fails and the job recovers, replaying what was not delivered.
 */
export class WebhookDeliveryError extends Error {
  readonly transient = false;
  constructor(
    message: string,
    /** The receiver's last HTTP status, if it answered. */
    readonly status?: number,
  ) {
    super(message);
  }
}

/** Timings of the retries, for tests that cannot wait for the real ones. */
export interface WebhookTimings {
  baseDelayMs?: number;
  maxDelayMs?: number;
  maxRetryAfterMs?: number;
}

/**
 * POSTs records to an HTTP endpoint as JSON arrays of at most `batchSize`, at least once (DESIGN §8): what is buffered
 * goes on each periodic flush and at every barrier (the checkpoint waits for it), in order, one batch at a time.
 *
 * Each batch carries an `Idempotency-Key`: a SHA-256 of the job, the sink, the subtask, the checkpoint its records
 * follow, their place after it, and the batch's bytes. Retries of a batch share it, and so does a recovery's replay
 * of the same records when it cuts the same batch; two batches that merely hold the same bytes elsewhere in the
 * output do not, so a receiver that drops repeated keys never drops distinct data.
 *
 * Network errors, timeouts, 408, 429 and 5xx are retried with exponential backoff and jitter (a Retry-After is
 * honoured) up to `maxRetries`; then, or at once on any other answer that is not 2xx, the subtask fails with the URL
 * and the receiver's last answer, and the job recovers and replays. A refusal (400, 401, 404, 413, 422…) is not
 * dead-lettered: the receiver cannot say which record of a batch it objected to, and a wrong URL or token would
 * otherwise drain the whole output into dead letters; a failed job keeps every record replayable from its source.
 */
export class WebhookSink implements Sink {
  readonly delivery = 'at-least-once';
  private buffer: string[] = [];
  private target: { url: string; headers: Record<string, string>; shown: string } | undefined;
  /** The checkpoint the records now buffered follow, and how many came after it before them. */
  private epoch: string;
  private position = 0;
  /** Deliveries in order: each batch waits for the ones before it. */
  private sending: Promise<void> = Promise.resolve();
  private readonly closing = new AbortController();
  private readonly timings: Required<WebhookTimings>;

  constructor(
    private readonly settings: WebhookSinkSettings,
    private readonly ctx: SinkContext,
    private readonly resolve: ConnectionResolver,
    private readonly log: Logger,
    timings: WebhookTimings = {},
  ) {
    // A subtask a rescale started reads no replay before its first barrier: a key of its own.
    this.epoch = ctx.recoverFrom === undefined ? `joined-${randomUUID()}` : String(ctx.recoverFrom);
    this.timings = { baseDelayMs: BASE_DELAY_MS, maxDelayMs: MAX_DELAY_MS, maxRetryAfterMs: MAX_RETRY_AFTER_MS, ...timings };
  }

  async open(): Promise<void> {
    const c = await this.resolve(this.settings.connection);
    if (c.kind !== 'http') throw new Error(`connection '${c.name}' is a ${c.kind} connection; a webhook needs an http one`);
    const url = new URL(c.url);
    const headers: Record<string, string> = {};
    if (c.token) headers.authorization = `Bearer ${c.token}`;
    else if (c.username !== undefined) headers.authorization = `Basic ${Buffer.from(`${c.username}:${c.password ?? ''}`).toString('base64')}`;
    for (const [name, value] of Object.entries(c.headers ?? {})) headers[name.toLowerCase()] = value;
    // Never the credentials or the query (which may hold a token) in a log or an error.
    this.target = { url: url.href, headers, shown: `${url.origin}${url.pathname}` };
  }

  process(record: Rec): void {
    this.buffer.push(toJson(record));
  }

  buffered(): number {
    return this.buffer.length;
  }

  flush(): Promise<void> {
    return this.send(this.cut());
  }

  /** At barrier n: what came before it is delivered before the checkpoint is acknowledged. */
  preCommit(checkpoint: number): Promise<void> {
    const batches = this.cut();
    this.epoch = String(checkpoint);
    this.position = 0;
    return this.send(batches);
  }

  async commit(): Promise<void> {}

  finish(): Promise<void> {
    return this.flush();
  }

  async close(): Promise<void> {
    this.closing.abort();
    await this.sending.catch(() => {});
  }

  /** Takes what is buffered as batches of at most batchSize, each keyed by where its records sit in the output. */
  private cut(): Batch[] {
    const taken = this.buffer;
    this.buffer = [];
    const batches: Batch[] = [];
    for (let i = 0; i < taken.length; i += this.settings.batchSize) {
      const records = taken.slice(i, i + this.settings.batchSize);
      const body = `[${records.join(',')}]`;
      const { jobId, vertexId, index } = this.ctx;
      const key = createHash('sha256').update(`${jobId}\n${vertexId}\n${index}\n${this.epoch}\n${this.position}\n`).update(body).digest('hex');
      this.position += records.length;
      batches.push({ body, key, records: records.length });
    }
    return batches;
  }

  /** Delivers the batches after everything sent before; once one failed for good, every later send fails with it. */
  private send(batches: Batch[]): Promise<void> {
    const run = this.sending.then(async () => {
      for (const b of batches) await this.post(b);
    });
    this.sending = run;
    return run;
  }

  /** POSTs one batch until it is taken, retrying what may pass (see the class). */
  private async post(batch: Batch): Promise<void> {
    const target = this.target;
    if (!target) throw new Error('the webhook sink was not opened');
    const { maxRetries, timeout } = this.settings;
    for (let attempt = 0; ; attempt++) {
      let last: string;
      let status: number | undefined;
      let retryAfterMs: number | undefined;
      try {
        const res = await fetch(target.url, {
          method: 'POST',
          headers: { ...target.headers, 'content-type': 'application/json', 'idempotency-key': batch.key },
          body: batch.body,
          // A redirect would turn the POST into a GET (or carry the Authorization elsewhere): it is an answer like any other.
          redirect: 'manual',
          signal: AbortSignal.any([AbortSignal.timeout(timeout), this.closing.signal]),
        });
        if (res.ok) {
          await res.body?.cancel();
          return;
        }
        status = res.status;
        last = `${res.status} ${res.statusText}${await bodySample(res)}`;
        if (!retriable(res.status))
          throw new WebhookDeliveryError(
            `webhook ${target.shown} refused a batch of ${batch.records} records: ${last} (not retried: the receiver would refuse it again)`,
            res.status,
          );
        retryAfterMs = retryAfter(res.headers.get('retry-after'));
      } catch (err) {
        if (err instanceof WebhookDeliveryError) throw err;
        if (this.closing.signal.aborted) throw new Error(`webhook ${target.shown}: the sink closed while a batch was in flight`, { cause: err });
        const e = err as Error & { cause?: { code?: string; message?: string } };
        last = e.name === 'TimeoutError' ? `no answer within ${timeout} ms` : `${e.message}${e.cause?.message ? `: ${e.cause.message}` : ''}`;
      }
      if (attempt >= maxRetries)
        throw new WebhookDeliveryError(
          `webhook ${target.shown} failed to take a batch of ${batch.records} records in ${attempt + 1} attempts; the last: ${last}`,
          status,
        );
      const delayMs = retryAfterMs !== undefined ? Math.min(retryAfterMs, this.timings.maxRetryAfterMs) : this.backoff(attempt);
      this.log.warn({ url: target.shown, attempt: attempt + 1, status, delayMs, error: last }, 'webhook POST failed; retrying');
      await sleep(delayMs, this.closing.signal);
    }
  }

  /** Exponential, with equal jitter: half the step, plus up to half again at random. */
  private backoff(attempt: number): number {
    const step = Math.min(this.timings.maxDelayMs, this.timings.baseDelayMs * 2 ** attempt);
    return Math.round(step / 2 + (Math.random() * step) / 2);
  }
}

/** Answers worth asking again: the receiver is busy, overloaded or failed on its side. */
function retriable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** A Retry-After header (seconds, or an HTTP date) in ms; undefined when absent or unreadable. */
function retryAfter(header: string | null): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

async function bodySample(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  const t = text.trim();
  if (!t) return '';
  return `: ${t.length > BODY_SAMPLE ? `${t.slice(0, BODY_SAMPLE)}…` : t}`;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('the webhook sink closed'));
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error('the webhook sink closed'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** JSON text of a record, with bigints as decimal strings. */
function toJson(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch {
    return JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x));
  }
}
