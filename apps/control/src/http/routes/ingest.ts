import { ingestParams, type IngestResult } from '@keyflow/api';
import type { Rec } from '@keyflow/core';
import { appendToIngest, type RedisKeys } from '@keyflow/runtime';
import type { FastifyError } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import { findIngestSource } from '../../jobs/ingestSources.ts';
import type { JobManager } from '../../jobs/jobManager.ts';
import { Refused } from '../../jobs/refusal.ts';

/** A request's records, or the first bad one: where it is (its index in the array, or its line) and why. */
export type ParsedIngest = { ok: true; records: Rec[] } | { ok: false; message: string; at?: { index: number } | { line: number } };

/**
 * Records POSTed to a running job's HTTP source (`POST /api/ingest/:sourceName`, operator role, so scripts send an
 * operator API key): `application/json` (one object, or an array of objects) or `application/x-ndjson` (one object
 * per line). All of a request's records are appended to the source's ingest log, or none: 202 `{accepted}` once they
 * are in Redis; 400 naming the first bad record; 413 over `maxBytes` (KEYFLOW_INGEST_MAX_BYTES) or `maxRecords` (one
 * request is one atomic Redis script, and Redis does nothing else while it runs: about 4 µs a record); 429 with
 * Retry-After while the records no checkpoint covers yet, with these, would exceed the source's maxBacklog; 404 when
 * no active job has the source.
 */
export function ingestRoutes(deps: { redis: Redis; keys: RedisKeys; jobs: JobManager; maxBytes: number; maxRecords: number }): FastifyPluginAsyncZod {
  const { redis, keys, jobs, maxBytes, maxRecords } = deps;
  return async (app) => {
    // The body comes as text, in these two types only: the handler parses it, and can say which record is bad.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser(['application/json', 'application/x-ndjson'], { parseAs: 'string' }, (_req, body, done) => done(null, body));
    app.setErrorHandler((err: FastifyError, _req, reply) => {
      if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
        return reply.code(413).send({
          error: 'payload too large',
          message: `the body is over ${maxBytes} bytes (KEYFLOW_INGEST_MAX_BYTES): send fewer records per request`,
        });
      if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
        return reply
          .code(415)
          .send({ error: 'unsupported media type', message: 'send application/json (an object, or an array of them) or application/x-ndjson' });
      throw err;
    });

    app.post(
      '/ingest/:sourceName',
      { schema: { params: ingestParams }, bodyLimit: maxBytes, config: { role: 'operator' } },
      async (req, reply): Promise<IngestResult> => {
        jobs.assertCoordinating();
        const { sourceName } = req.params;
        const source = findIngestSource(jobs.active.values(), sourceName);
        if (!source) throw new Refused('not-found', `no running job has an HTTP source named '${sourceName}'`);
        const ndjson = /^application\/x-ndjson\b/i.test(req.headers['content-type'] ?? '');
        const parsed = parseIngestBody(typeof req.body === 'string' ? req.body : '', ndjson);
        if (!parsed.ok) return reply.code(400).send({ error: 'bad request', message: parsed.message, ...(parsed.at && { record: parsed.at }) });
        const { settings, job } = source;
        if (parsed.records.length > maxRecords)
          return reply.code(413).send({
            error: 'payload too large',
            message: `${parsed.records.length} records in one request; at most ${maxRecords} (KEYFLOW_INGEST_MAX_RECORDS): send fewer per request`,
          });
        if (parsed.records.length > settings.maxBacklog)
          return reply.code(413).send({
            error: 'payload too large',
            message: `${parsed.records.length} records are more than HTTP source '${sourceName}' ever holds (maxBacklog ${settings.maxBacklog}): send fewer per request`,
          });
        const result = await appendToIngest(redis, keys, settings, parsed.records);
        if (result.refused) {
          // The backlog shrinks when a checkpoint completes (the log is trimmed to what it covers).
          const seconds = Math.max(1, Math.ceil(job.checkpointIntervalMs / 1000));
          return reply
            .code(429)
            .header('retry-after', String(seconds))
            .send({
              error: 'too many requests',
              message: `HTTP source '${sourceName}' holds ${result.backlog} records no checkpoint covers yet; ${parsed.records.length} more would exceed its maxBacklog of ${settings.maxBacklog}: retry in ${seconds} s`,
            });
        }
        return reply.code(202).send({ accepted: result.appended });
      },
    );
  };
}

/** A body's records: a JSON object or an array of objects, or NDJSON (one object per line, blank lines aside). */
export function parseIngestBody(text: string, ndjson: boolean): ParsedIngest {
  if (ndjson) {
    const records: Rec[] = [];
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (!line) continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (err) {
        return { ok: false, message: `line ${i + 1} is not valid JSON: ${(err as Error).message}`, at: { line: i + 1 } };
      }
      if (!isObject(value)) return { ok: false, message: `line ${i + 1} is not a JSON object: it is ${kindOf(value)}`, at: { line: i + 1 } };
      records.push(value);
    }
    return { ok: true, records };
  }
  if (!text.trim()) return { ok: false, message: 'the body is empty: send a JSON object, or an array of them' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const bad = firstBadElement(text);
    if (bad)
      return {
        ok: false,
        message: `the record at index ${bad.index} (line ${bad.line}) is not valid JSON: ${bad.message}`,
        at: { index: bad.index },
      };
    return { ok: false, message: `the body is not valid JSON: ${(err as Error).message}` };
  }
  if (isObject(value)) return { ok: true, records: [value] };
  if (!Array.isArray(value)) return { ok: false, message: `the body is ${kindOf(value)}: send a JSON object, or an array of them` };
  const bad = value.findIndex((v) => !isObject(v));
  if (bad >= 0) return { ok: false, message: `the record at index ${bad} is not a JSON object: it is ${kindOf(value[bad])}`, at: { index: bad } };
  return { ok: true, records: value as Rec[] };
}

const isObject = (v: unknown): v is Rec => v !== null && typeof v === 'object' && !Array.isArray(v);

const kindOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`);

/**
 * In an array body that does not parse, the first element that does not parse on its own: found by splitting the
 * array at its top-level commas (outside strings and nested values). Undefined when the body is no array, or every
 * element parses (what is wrong lies outside them).
 */
function firstBadElement(text: string): { index: number; line: number; message: string } | undefined {
  const start = text.search(/\S/);
  if (text[start] !== '[') return undefined;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let from = start + 1;
  let index = 0;
  const check = (to: number) => {
    const element = text.slice(from, to);
    try {
      JSON.parse(element);
      return undefined;
    } catch (err) {
      const at = from + Math.max(0, element.search(/\S/));
      return { index, line: text.slice(0, at).split('\n').length, message: (err as Error).message };
    }
  };
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      // An empty array's end is no element.
      if (--depth === 0) return index === 0 && !text.slice(from, i).trim() ? undefined : check(i);
    } else if (c === ',' && depth === 1) {
      const bad = check(i);
      if (bad) return bad;
      from = i + 1;
      index++;
    }
  }
  return check(text.length);
}
