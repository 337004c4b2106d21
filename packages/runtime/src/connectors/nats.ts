import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { ConnectionProfile } from './connection.ts';

/** What connecting to NATS takes of a connection profile. */
export type NatsProfile = Pick<ConnectionProfile, 'url' | 'username' | 'password' | 'token' | 'tls'>;

/**
 * A NATS connection from a connection profile: its url is one server or several, comma-separated
 * (nats://127.0.0.1:4222). It reconnects for as long as it is open; JetStream consumers resume across.
 */
export function natsConnect(profile: NatsProfile): Promise<NatsConnection> {
  return connect({
    servers: profile.url.split(',').map((s) => s.trim()),
    name: 'keyflow',
    maxReconnectAttempts: -1,
    ...(profile.username !== undefined && { user: profile.username, pass: profile.password ?? '' }),
    ...(profile.token !== undefined && { token: profile.token }),
    // The Node transport hands these on to tls.connect, rejectUnauthorized and servername included.
    ...(profile.tls && { tls: { ...profile.tls } }),
  });
}

/** The profile's servers without any credentials in them: what messages may name. */
export function natsServers(profile: NatsProfile): string {
  return profile.url.replace(/\/\/[^/@]*@/g, '//');
}

/** A stream's info; a stream that does not exist is an error that names it and the servers. */
export async function natsStream(jsm: JetStreamManager, stream: string, servers: string): Promise<StreamInfo> {
  try {
    return await jsm.streams.info(stream);
  } catch (err) {
    throw isStreamNotFound(err) ? streamMissing(stream, servers, err) : err;
  }
}

/** The error of a stream that does not exist, naming it and the servers. */
export function streamMissing(stream: string, servers: string, cause?: unknown): Error {
  return new Error(`stream '${stream}' does not exist on ${servers}`, { cause });
}

/** Whether JetStream answered that a stream does not exist (its info, a consumer on it, a stream for a subject). */
export function isStreamNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
}

/** Whether two subjects (with * and > wildcards) can match the same subject: a filter outside a stream's subjects never can. */
export function subjectsOverlap(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; i < x.length && i < y.length; i++) {
    // '>' stands for one token or more: here at least one is left on the other side.
    if (x[i] === '>' || y[i] === '>') return true;
    if (x[i] !== '*' && y[i] !== '*' && x[i] !== y[i]) return false;
  }
  return x.length === y.length;
}
