import type { EventTimeSettings, NatsSourceSettings } from '@keyflow/core';
import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../logger.ts';
import { BufferedSource, type Fetched, type MessageFormat, type SplitReader } from './bufferedSource.ts';
import type { ConnectionProfile } from './connection.ts';
import { isStreamNotFound, natsConnect, natsServers, natsStream, streamMissing, subjectsOverlap } from './nats.ts';

/** How long a reader waits for a first message before it comes back empty. */
const WAIT_MS = 500;

/** Messages a consumer pulls ahead into the client at most (the base class buffers more). */
const PULL_BATCH = 512;

/** Unemitted messages a reader keeps track of for its lag: more than the base class buffers. */
const UNEMITTED_MAX = 8192;

/** What a NATS source reads: a stream, its subject filters (one split each; none: the whole stream as one) and how. */
export interface NatsSourceConfig {
  stream: string;
  subjects?: string[];
  format: MessageFormat;
  start: 'earliest' | 'latest';
  eventTime: EventTimeSettings;
}

/**
 * Messages of a JetStream stream, one split per subject filter, each read by an ordered consumer of its own that
 * starts right after the split's offset: the stream sequence of the last message emitted. Nothing is acknowledged
 * to NATS (the consumers are ephemeral, without acks): the checkpoint is the only cursor, so a recovery or a
 * rescale resumes exactly after what went downstream.
 */
export class NatsSource extends BufferedSource {
  private nc: Promise<NatsConnection> | undefined;
  private servers = '';

  constructor(
    protected readonly config: NatsSourceConfig,
    /** The NATS connection profile (resolved when the source connects). */
    private readonly profile: () => Promise<ConnectionProfile>,
    index: number,
    parallelism: number,
    deadLetter: (record: unknown, reason: string) => void,
    log: Logger,
  ) {
    super(config.subjects?.length ?? 1, index, parallelism, config.eventTime, config.format, deadLetter, log);
  }

  static fromSettings(
    s: NatsSourceSettings,
    profile: () => Promise<ConnectionProfile>,
    index: number,
    parallelism: number,
    deadLetter: (record: unknown, reason: string) => void,
    log: Logger,
  ): NatsSource {
    return new NatsSource(
      { stream: s.stream, ...(s.subjects && { subjects: s.subjects }), format: s.format, start: s.start, eventTime: s },
      profile,
      index,
      parallelism,
      deadLetter,
      log,
    );
  }

  /** Connects and checks that the stream exists and can hold its subjects: a job that would read nothing fails, saying why. */
  async open(): Promise<void> {
    const { stream, subjects } = this.config;
    const nc = await this.connection();
    const { config } = await natsStream(await jetstreamManager(nc), stream, this.servers);
    const held = config.subjects ?? [];
    // A stream without subjects of its own (a mirror, one that sources others) can hold any subject.
    const outside = held.length ? subjects?.filter((f) => !held.some((s) => subjectsOverlap(f, s))) : undefined;
    if (outside?.length)
      throw new Error(
        `stream '${stream}' on ${this.servers} holds no subject of ${outside.map((f) => `'${f}'`).join(', ')}: its subjects are ${held.join(', ')}`,
      );
  }

  override async close(): Promise<void> {
    await super.close();
    const nc = await this.nc?.catch(() => undefined);
    await nc?.close().catch(() => {});
  }

  protected splitName(split: number): string {
    return this.config.subjects?.[split] ?? this.config.stream;
  }

  protected async openSplit(split: number, offset: unknown): Promise<SplitReader> {
    const { stream, start } = this.config;
    const subject = this.config.subjects?.[split];
    const nc = await this.connection();
    const jsm = await jetstreamManager(nc);
    // 'earliest' is after sequence 0 (a stream whose first messages are gone starts at its first one).
    const after = typeof offset === 'number' ? offset : start === 'earliest' ? 0 : (await natsStream(jsm, stream, this.servers)).state.last_seq;
    const from = offset === undefined ? after : undefined;
    const consumer = await jetstream(nc)
      .consumers.get(stream, {
        ...(subject !== undefined && { filter_subjects: subject }),
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: after + 1,
      })
      .catch((err: unknown) => {
        throw isStreamNotFound(err) ? streamMissing(stream, this.servers, err) : err;
      });
    // A stream deleted under it ends the reading with an error (logged, the split reopened), not a silent wait.
    const messages = await consumer.consume({ max_messages: PULL_BATCH, abort_on_missing_resource: true });
    const iterator = messages[Symbol.asyncIterator]();
    /** The iterator's next message when a wait for it timed out: the next call takes it up. */
    let waiting: Promise<IteratorResult<JsMsg>> | undefined;
    let returned = 0;
    /** Messages returned and maybe not emitted yet, oldest first (trimmed to those after the emitted offset by `lag`). */
    const unemitted: { seq: number; ms: number }[] = [];
    /** The time of the last message emitted, when it was one of this reader's. */
    let emittedMs: number | undefined;
    let closed = false;
    return {
      from,
      next: async (max) => {
        const out: Fetched[] = [];
        while (out.length < max && !closed) {
          if (!waiting) {
            waiting = iterator.next();
            // A failure while nobody waits is taken up by the next call, not left unhandled.
            waiting.catch(() => {});
          }
          // The first message is waited for a while; the rest only while the client already holds them.
          const got = await within(waiting, out.length ? 0 : WAIT_MS);
          if (!got) break;
          waiting = undefined;
          if (got.done) {
            if (closed) break;
            throw new Error(`the consumer of ${this.splitName(split)} in stream '${stream}' stopped`);
          }
          const m = got.value;
          returned++;
          unemitted.push({ seq: m.seq, ms: m.time.getTime() });
          // The base class holds fewer than this many unemitted at once: older ones went out even when no lag was read.
          if (unemitted.length > 2 * UNEMITTED_MAX) unemitted.splice(0, unemitted.length - UNEMITTED_MAX);
          out.push({ offset: m.seq, data: m.data });
        }
        return out;
      },
      lag: async (emitted) => {
        const upTo = typeof emitted === 'number' ? emitted : 0;
        let gone = 0;
        while (gone < unemitted.length && unemitted[gone]!.seq <= upTo) gone++;
        if (gone && unemitted[gone - 1]!.seq === upTo) emittedMs = unemitted[gone - 1]!.ms;
        unemitted.splice(0, gone);
        const info = await consumer.info();
        // Pending after what the server delivered, what the client holds but did not return, what was not emitted.
        const behind = info.num_pending + Math.max(0, messages.getReceived() - returned) + unemitted.length;
        if (behind === 0) return { messages: 0, ms: 0 };
        const since = emittedMs ?? unemitted[0]?.ms;
        const newest = since === undefined ? undefined : await newestTime(jsm, stream, subject);
        return { messages: behind, ...(newest !== undefined && { ms: Math.max(0, newest - since!) }) };
      },
      close: async () => {
        closed = true;
        messages.stop();
        // Ends the iterator even while messages it did not yield are queued (close alone waits for them).
        await iterator.return?.(undefined).catch(() => {});
        await consumer.delete().catch(() => {});
      },
    };
  }

  /** The source's connection, made again if it closed. */
  private async connection(): Promise<NatsConnection> {
    const current = this.nc;
    if (current) {
      const nc = await current.catch(() => undefined);
      if (nc && !nc.isClosed()) return nc;
      if (this.nc !== current) return this.connection();
    }
    this.nc = this.profile().then((p) => {
      this.servers = natsServers(p);
      return natsConnect(p);
    });
    return this.nc;
  }
}

/** The time of the newest message of a split, when it is cheap to ask: the whole stream, or one literal subject. */
async function newestTime(jsm: JetStreamManager, stream: string, subject: string | undefined): Promise<number | undefined> {
  if (subject === undefined) return Date.parse((await jsm.streams.info(stream)).state.last_ts);
  if (/(^|\.)(\*|>)(\.|$)/.test(subject)) return undefined;
  return (await jsm.streams.getMessage(stream, { last_by_subj: subject }))?.time.getTime();
}

/** What `p` resolves to within `ms` (0: only what is ready at once), else undefined; `p` is left as it is. */
function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = ms === 0 ? setImmediate(() => resolve(undefined)) : setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([p, timeout]).finally(() => {
    if (ms === 0) clearImmediate(timer as NodeJS.Immediate);
    else clearTimeout(timer as NodeJS.Timeout);
  });
}
