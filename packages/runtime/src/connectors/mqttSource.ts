import type { EventTimeSettings, MqttSourceSettings } from '@keyflow/core';
import { connect, type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Logger } from '../logger.ts';
import type { SourceLag } from '../protocol.ts';
import { BufferedSource, type Fetched, type MessageFormat, type SplitReader } from './bufferedSource.ts';
import type { ConnectionProfile } from './connection.ts';

/** How long one `next` waits for messages before it comes back empty. */
const WAIT_MS = 500;

/** How long the broker keeps a split's session (its subscription and unacknowledged messages) while nobody reads it. */
const SESSION_EXPIRY_S = 7 * 24 * 3600;

/**
 * Unacknowledged messages the broker may have out to a split at once (MQTT 5 Receive Maximum; 65535 is the most MQTT
 * allows). Without it Mosquitto sends 20 (max_inflight_messages), which with acknowledgements held until a
 * checkpoint completes would cap a split at 20 messages per checkpoint.
 */
const RECEIVE_MAXIMUM = 65_535;

/** How long connecting to the broker may take. */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * What handleMessage calls back with so that mqtt.js sends no PUBACK now: it handles one packet at a time and sends a
 * QoS 1 message's PUBACK once handleMessage calls back without an error (holding the callback would stall the session).
 */
const ACK_LATER = new Error('acknowledged once a checkpoint covers it');

/** What an MQTT source reads: its topic filters (one split and one session each) and how. */
export interface MqttConfig {
  topics: string[];
  format: MessageFormat;
  eventTime: EventTimeSettings;
  /** The start of each split's client id, stable for the job and the vertex: `<clientIdPrefix>-<split>`. */
  clientIdPrefix: string;
}

/**
 * QoS 1 messages of MQTT topic filters, one split per filter, each split a persistent session of its own (MQTT 5,
 * clean start off, a client id stable per job, vertex and split). A message is acknowledged (PUBACK) only once the
 * checkpoint it was emitted before completed, so the broker keeps, and after a crash redelivers, whatever no
 * completed checkpoint covers: at least once, never lost, duplicates possible (after a crash, a reconnection, or a
 * rescale that moves a split, whose new owner takes the session over with the same client id).
 *
 * MQTT has no replayable position: a split's offset is a counter of the messages emitted, kept only to tell, at a
 * checkpoint, which delivered messages it covers. Limits that follow from acknowledging at checkpoints (Mosquitto):
 * at most 65535 messages per split are in flight (the Receive Maximum asked for; the broker's default of 20 does not
 * apply to MQTT 5 clients that ask for more); beyond that the broker queues max_queued_messages (1000 by default)
 * per session, also while the job is down, and drops what comes after. While a session is away, Mosquitto counts in
 * that limit the messages it delivered and had no PUBACK for (seen with Mosquitto 2.0: 500 outstanding at a crash,
 * then 600 published, and the session got the first 1000 back). So a split takes up to about 66500 messages per
 * checkpoint interval, and while no subtask reads it, 1000 less what the last checkpoint had not covered.
 */
export class MqttSource extends BufferedSource {
  /** Each split's open session, by split. */
  private readonly sessions = new Map<number, SessionReader>();
  /** Per checkpoint taken and not completed yet: up to which message each split's session emitted before its barrier. */
  private readonly taken: { checkpoint: number; marks: { session: SessionReader; seq: number }[] }[] = [];

  constructor(
    protected readonly config: MqttConfig,
    private readonly profile: () => Promise<ConnectionProfile>,
    index: number,
    parallelism: number,
    deadLetter: (record: unknown, reason: string) => void,
    log: Logger,
  ) {
    super(config.topics.length, index, parallelism, config.eventTime, config.format, deadLetter, log);
  }

  static fromSettings(
    s: MqttSourceSettings,
    profile: () => Promise<ConnectionProfile>,
    session: { jobId: string; vertexId: string },
    index: number,
    parallelism: number,
    deadLetter: (record: unknown, reason: string) => void,
    log: Logger,
  ): MqttSource {
    return new MqttSource(
      { topics: s.topics, format: s.format, eventTime: s, clientIdPrefix: `keyflow-${session.jobId}-${session.vertexId}` },
      profile,
      index,
      parallelism,
      deadLetter,
      log,
    );
  }

  /** The client id of a split's session. */
  clientId(split: number): string {
    return `${this.config.clientIdPrefix}-${split}`;
  }

  protected splitName(split: number): string {
    return this.config.topics[split]!;
  }

  protected async openSplit(split: number, offset: unknown): Promise<SplitReader> {
    const p = await this.profile();
    const options: IClientOptions = {
      clientId: this.clientId(split),
      protocolVersion: 5,
      clean: false,
      properties: { sessionExpiryInterval: SESSION_EXPIRY_S, receiveMaximum: RECEIVE_MAXIMUM },
      // A lost connection fails the reader, which BufferedSource reopens: a new session's messages get new numbers.
      reconnectPeriod: 0,
      connectTimeout: CONNECT_TIMEOUT_MS,
      manualConnect: true,
      ...(p.username && { username: p.username }),
      ...(p.password && { password: p.password }),
      ...(p.tls && { ...p.tls }),
    };
    const filter = this.config.topics[split]!;
    // Numbering goes on from the last emitted message, so a checkpoint's offset never covers a message not emitted.
    const session = new SessionReader(connect(p.url, options), typeof offset === 'number' ? offset : 0);
    try {
      const connack = await session.connected;
      if (!connack.sessionPresent && offset !== undefined)
        this.log.warn(
          { split: filter, clientId: options.clientId },
          'the broker had no session for the split any more (expired or lost): messages published while it was gone are lost',
        );
      // rh 1: retained messages only for a new subscription, not again at each reconnection.
      const [grant] = await session.client.subscribeAsync(filter, { qos: 1, rh: 1 });
      if (grant?.qos !== 1) throw new Error(`the broker granted QoS ${grant?.qos} to '${filter}', not 1: messages could be lost`);
    } catch (err) {
      await session.close();
      throw err;
    }
    this.sessions.set(split, session);
    session.onClose = () => {
      if (this.sessions.get(split) === session) this.sessions.delete(split);
    };
    return session;
  }

  /** At checkpoint n's barrier: the messages each split emitted so far are acknowledged once n completed. */
  snapshot(checkpoint: number): void {
    const marks: { session: SessionReader; seq: number }[] = [];
    for (const split of this.splits) {
      const session = this.sessions.get(split);
      const seq = this.offsets.get(split);
      if (session && typeof seq === 'number') marks.push({ session, seq });
    }
    this.taken.push({ checkpoint, marks });
  }

  /** Checkpoint n completed: sends the PUBACKs of what it (and any earlier checkpoint not completed) covers. */
  async completed(checkpoint: number): Promise<void> {
    while (this.taken[0] && this.taken[0].checkpoint <= checkpoint) for (const m of this.taken.shift()!.marks) m.session.ack(m.seq);
  }

  /** Per held split: the messages delivered to it and not acknowledged yet (MQTT cannot tell how many the broker queues). */
  lag(): SourceLag[] {
    return this.splits.flatMap((split) => {
      const s = this.sessions.get(split);
      return s ? [{ split, name: this.splitName(split), messages: s.inFlight }] : [];
    });
  }
}

/** One split's session: its client, the messages it delivered, and which of them still wait for their PUBACK. */
class SessionReader implements SplitReader {
  /** A new job's split starts its count at 0 (made concrete so a checkpoint keeps it). */
  readonly from = 0;
  /** Connects, resolving with the broker's CONNACK. */
  readonly connected: Promise<IConnackPacket>;
  onClose: (() => void) | undefined;
  /** Messages delivered and not returned by `next` yet. */
  private readonly arrived: Fetched[] = [];
  /** QoS 1 messages delivered and not acknowledged, in the order they came: their number and packet id. */
  private readonly unacked: { seq: number; messageId: number }[] = [];
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(
    readonly client: MqttClient,
    /** The number of the last message emitted before this session: the next one delivered is seq + 1. */
    private seq: number,
  ) {
    // Set before connecting: a resumed session redelivers right after the CONNACK.
    client.handleMessage = (packet, done) => this.deliver(packet, done);
    this.connected = new Promise((resolve, reject) => {
      client.once('connect', resolve);
      client.once('close', () => reject(this.failure ?? new Error('the connection to the broker closed')));
    });
    // Listened to from the start: an 'error' without a listener would be thrown.
    client.on('error', (err) => this.fail(err));
    client.on('disconnect', (p) => this.fail(new Error(`the broker disconnected the session (reason code ${p.reasonCode ?? 0})`)));
    client.on('close', () => this.fail(new Error('the connection to the broker closed')));
    this.connected.catch(() => {});
    client.connect();
  }

  /** QoS 1 messages delivered and not acknowledged. */
  get inFlight(): number {
    return this.unacked.length;
  }

  async next(max: number): Promise<Fetched[]> {
    if (!this.arrived.length && !this.failure) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        timer = setTimeout(resolve, WAIT_MS);
      });
      clearTimeout(timer);
      this.wake = undefined;
    }
    // What came after a failure is not returned: its PUBACK could not be sent, the next session gets it again.
    if (this.failure) throw this.failure;
    return this.arrived.splice(0, max);
  }

  /** Sends the PUBACKs of the messages up to number `upTo`; on a connection that is gone, the broker redelivers them instead. */
  ack(upTo: number): void {
    while (this.unacked[0] && this.unacked[0].seq <= upTo) {
      const { messageId } = this.unacked.shift()!;
      // mqtt.js has no public call for a PUBACK it did not send itself; this is the one its own handler uses.
      if (this.client.connected) this.client['_sendPacket']({ cmd: 'puback', messageId, reasonCode: 0 });
    }
  }

  async close(): Promise<void> {
    this.fail(new Error('closed'));
    // DISCONNECT keeps the session (and what it did not acknowledge) on the broker for SESSION_EXPIRY_S.
    await this.client.endAsync(!this.client.connected).catch(() => {});
  }

  private deliver(packet: IPublishPacket, done: (error?: Error) => void): void {
    const seq = ++this.seq;
    this.arrived.push({ offset: seq, data: packet.payload });
    this.wake?.();
    if (packet.qos === 1 && packet.messageId !== undefined) {
      this.unacked.push({ seq, messageId: packet.messageId });
      done(ACK_LATER);
    } else done();
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.wake?.();
    this.onClose?.();
  }
}
