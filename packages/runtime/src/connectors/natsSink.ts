import type { NatsSinkSettings } from '@keyflow/core';
import { jetstream, jetstreamManager, type JetStreamClient, type PubAck } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../logger.ts';
import type { ConnectionProfile } from './connection.ts';
import { MessageSink, type OutMessage } from './messageSink.ts';
import { isStreamNotFound, natsConnect, natsServers, natsStream } from './nats.ts';
import type { SinkContext } from './sink.ts';

/** The shortest duplicate window exactly-once accepts: JetStream's default, which outlasts a recovery (see the class). */
export const MIN_DUPLICATE_WINDOW_MS = 120_000;

/** Publishes in flight at most before their acks are awaited. */
const IN_FLIGHT = 1024;

/**
 * Publishes records as JSON messages to a subject that a JetStream stream captures, each with its id as
 * `Nats-Msg-Id`, and waits for JetStream's acks (many in flight, awaited in order).
 *
 * Exactly-once rests on the stream's deduplication: a message whose id the stream saw within its
 * `duplicate_window` is acknowledged with `duplicate: true` (and the original's sequence) and not stored again.
 * The outbox (MessageSink) republishes a row under the same ids only when a failure came between its publish and
 * its delete: by the attempt that published it, or by the next attempt when it opens. So the window must be
 * longer than the longest time from a checkpoint's completion (its first publish) to the end of the recovery
 * that republishes it: failure detection, the restart backoff (up to 30 s) and the new attempt's start, summed over
 * the attempts when several fail in a row before one deletes the row. The default 2 min covers recoveries shorter
 * than that, and is the least this sink accepts; a stream with a shorter window is refused at open with a message
 * that says so (use at-least-once, or raise the window).
 */
export class NatsSink extends MessageSink {
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;

  constructor(
    private readonly settings: NatsSinkSettings,
    /** The NATS connection profile (resolved when the sink connects). */
    private readonly profile: () => Promise<ConnectionProfile>,
    databaseUrl: string,
    ctx: SinkContext,
    private readonly log: Logger,
  ) {
    super(settings.delivery, databaseUrl, ctx);
  }

  /** Connects and checks that a stream captures the subject, with a duplicate window long enough for exactly-once. */
  protected async connect(): Promise<void> {
    const { subject } = this.settings;
    const profile = await this.profile();
    const servers = natsServers(profile);
    const nc = await natsConnect(profile);
    try {
      const jsm = await jetstreamManager(nc);
      const stream = await jsm.streams.find(subject).catch((err: unknown) => {
        throw isStreamNotFound(err) ? new Error(`no stream on ${servers} captures subject '${subject}'`, { cause: err }) : err;
      });
      const windowMs = (await natsStream(jsm, stream, servers)).config.duplicate_window / 1e6;
      if (this.delivery === 'exactly-once' && windowMs < MIN_DUPLICATE_WINDOW_MS)
        throw new Error(
          `stream '${stream}' drops duplicates for ${windowMs / 1000} s only: exactly-once needs a duplicate window of at least ` +
            `${MIN_DUPLICATE_WINDOW_MS / 1000} s (longer than a recovery takes); raise it or publish at-least-once`,
        );
      this.nc = nc;
      this.js = jetstream(nc);
    } catch (err) {
      await nc.close().catch(() => {});
      throw err;
    }
  }

  protected async disconnect(): Promise<void> {
    const nc = this.nc;
    this.nc = undefined;
    this.js = undefined;
    await nc?.close();
  }

  protected async publish(messages: OutMessage[]): Promise<void> {
    const js = this.js;
    if (!js) throw new Error('the NATS sink is not connected');
    let duplicates = 0;
    for (let i = 0; i < messages.length; i += IN_FLIGHT) {
      const acks: Promise<PubAck>[] = messages.slice(i, i + IN_FLIGHT).map((m) => js.publish(this.settings.subject, m.payload, { msgID: m.id }));
      // Every ack is awaited, even after one failed: none is left to reject unheard.
      const settled = await Promise.allSettled(acks);
      for (const s of settled) {
        if (s.status === 'rejected') throw s.reason;
        if (s.value.duplicate) duplicates++;
      }
    }
    if (duplicates)
      this.log.info(
        { subject: this.settings.subject, duplicates },
        'messages published before a failure were published again; JetStream dropped the duplicates',
      );
  }
}
