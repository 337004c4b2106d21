// "Test connection": whether a connection's host answers, takes its credentials and has what a pipeline would read
// (a stream, a subject, a publication, a topic). Unreachable and refused credentials are told apart in words.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import type { ConnectionTestBody, ConnectionTestResult } from '@keyflow/api';
import type { ConnectionProfile, ConnectionTls } from '@keyflow/db';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import mqtt from 'mqtt';
import pg from 'pg';

/** How long a test may take in all. */
const PROBE_TIMEOUT_MS = 5000;

/** What went wrong, as a person needs to know it: where to look first. */
type FailureKind = 'unreachable' | 'tls' | 'auth' | 'missing';

class ProbeFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
  ) {
    super(message);
  }
}

/** Clients to close once the test is over, whether it passed, failed or ran out of time (one made later is closed at once). */
class Closers {
  private over = false;
  private readonly pending: (() => unknown)[] = [];

  push(close: () => unknown): void {
    if (this.over) void closeQuietly(close);
    else this.pending.push(close);
  }

  async closeAll(): Promise<void> {
    this.over = true;
    await Promise.all(this.pending.splice(0).map(closeQuietly));
  }
}

async function closeQuietly(close: () => unknown): Promise<void> {
  try {
    await close();
  } catch {
    // a client that never connected
  }
}

type Probe = (profile: ConnectionProfile, target: ConnectionTestBody, closers: Closers, timeoutMs: number) => Promise<string>;

const DEFAULT_PORTS: Record<string, number> = {
  nats: 4222,
  tls: 4222,
  redis: 6379,
  rediss: 6379,
  postgres: 5432,
  postgresql: 5432,
  mqtt: 1883,
  mqtts: 8883,
  ws: 80,
  wss: 443,
  http: 80,
  https: 443,
};

/** `host:port` of each of a connection's servers, as the messages name them. */
function whereOf(profile: Pick<ConnectionProfile, 'kind' | 'url'>): string {
  const urls = profile.kind === 'nats' ? profile.url.split(',') : [profile.url];
  return urls
    .map((u) => {
      const url = new URL(u.trim());
      return `${url.hostname}:${url.port || DEFAULT_PORTS[url.protocol.replace(/:$/, '')] || '?'}`;
    })
    .join(', ');
}

/** Tests a connection; never throws: a failure is the answer, with what failed. */
export async function probeConnection(
  profile: ConnectionProfile,
  target: ConnectionTestBody = {},
  timeoutMs = PROBE_TIMEOUT_MS,
): Promise<ConnectionTestResult> {
  const probe: Probe | undefined = PROBES[profile.kind as keyof typeof PROBES];
  if (!probe) return { ok: false, message: `connections of kind '${profile.kind}' cannot be tested`, latencyMs: 0 };
  const started = performance.now();
  const where = whereOf(profile);
  const closers = new Closers();
  let timer: NodeJS.Timeout | undefined;
  const outOfTime = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProbeFailure('unreachable', `no answer within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  let result: { ok: boolean; message: string };
  try {
    result = { ok: true, message: await Promise.race([probe(profile, target, closers, timeoutMs), outOfTime]) };
  } catch (err) {
    result = { ok: false, message: failureMessage(where, err) };
  } finally {
    clearTimeout(timer);
    await closers.closeAll();
  }
  return { ...result, latencyMs: Math.round(performance.now() - started) };
}

function failureMessage(where: string, err: unknown): string {
  const failure = err instanceof ProbeFailure ? err : classify(err);
  switch (failure.kind) {
    case 'unreachable':
      return `cannot reach ${where}: ${failure.message}`;
    case 'tls':
      return `reached ${where} but TLS failed: ${failure.message}`;
    case 'auth':
      return `reached ${where} but authentication failed: ${failure.message}`;
    case 'missing':
      return `reached ${where} and signed in, but ${failure.message}`;
  }
}

const NETWORK: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name could not be looked up',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed',
};

/** The error, or one it was caused by, that carries a Node.js error code. */
function codeOf(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++)
    if (typeof e.code === 'string') return e.code;
  return undefined;
}

/** A network or TLS failure of any client, by its Node.js error code; anything else is taken as unreachable. */
function classify(err: unknown): ProbeFailure {
  const code = codeOf(err);
  const message = (err as Error)?.message ?? String(err);
  if (code && NETWORK[code]) return new ProbeFailure('unreachable', `${NETWORK[code]} (${code})`);
  if (code && /CERT|SELF_SIGNED|UNABLE_TO|TLS|SSL|EPROTO/.test(code)) return new ProbeFailure('tls', `${message} (${code})`);
  return new ProbeFailure('unreachable', message);
}

/** Node's TLS options for a connection's; undefined when it sets none. */
function tlsOptions(tls: ConnectionTls | undefined) {
  if (!tls) return undefined;
  return {
    ...(tls.ca && { ca: tls.ca }),
    ...(tls.rejectUnauthorized !== undefined && { rejectUnauthorized: tls.rejectUnauthorized }),
    ...(tls.servername && { servername: tls.servername }),
  };
}

const probeNats: Probe = async (profile, target, closers, timeoutMs) => {
  const servers = profile.url.split(',').map((u) => u.trim());
  let nc;
  try {
    nc = await natsConnect({
      servers,
      ...(profile.username && { user: profile.username }),
      ...(profile.password && { pass: profile.password }),
      ...(profile.token && { token: profile.token }),
      ...(profile.tls && { tls: tlsOptions(profile.tls) as object }),
      timeout: timeoutMs,
      reconnect: false,
      name: 'keyflow connection test',
    });
  } catch (err) {
    if ((err as Error).name === 'AuthorizationError' || (err as Error).name === 'UserAuthenticationExpiredError')
      throw new ProbeFailure('auth', (err as Error).message);
    throw classify(err);
  }
  const conn = nc;
  closers.push(() => conn.close());
  const found: string[] = [`connected to ${conn.getServer()} (NATS ${conn.info?.version ?? 'server'})`];
  if (target.stream || target.subject) {
    const jsm = await jetstreamManager(conn, { timeout: timeoutMs }).catch((err: Error) => {
      throw new ProbeFailure('missing', `JetStream does not answer: ${err.message}`);
    });
    if (target.stream) {
      const info = await jsm.streams.info(target.stream).catch((err: Error) => {
        throw err.name === 'StreamNotFoundError' ? new ProbeFailure('missing', `JetStream has no stream '${target.stream}'`) : err;
      });
      found.push(`stream '${target.stream}' holds ${info.state.messages} messages`);
    }
    if (target.subject) {
      const stream = await jsm.streams.find(target.subject).catch((err: Error) => {
        throw err.name === 'StreamNotFoundError' ? new ProbeFailure('missing', `no JetStream stream captures subject '${target.subject}'`) : err;
      });
      found.push(`subject '${target.subject}' is captured by stream '${stream}'`);
    }
  }
  return found.join('; ');
};

const REDIS_AUTH = /^(WRONGPASS|NOAUTH)|invalid password|invalid username-password/i;

const probeRedis: Probe = async (profile, target, closers, timeoutMs) => {
  const redis = new Redis(profile.url, {
    lazyConnect: true,
    // One try: a test says what happened now, it does not wait for a server to come back.
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    connectTimeout: timeoutMs,
    ...(profile.username && { username: profile.username }),
    ...(profile.password && { password: profile.password }),
    ...(profile.tls && { tls: tlsOptions(profile.tls) }),
  });
  // ioredis rejects connect() with "Connection is closed."; the reason came as an 'error' event before.
  let reason: unknown;
  redis.on('error', (err) => (reason ??= err));
  closers.push(() => redis.disconnect());
  const failed = (err: unknown) => {
    const cause = reason ?? err;
    const message = (cause as Error)?.message ?? String(cause);
    return REDIS_AUTH.test(message) ? new ProbeFailure('auth', message) : classify(cause);
  };
  const pong = await redis
    .connect()
    .then(() => redis.ping())
    .catch((err) => {
      throw failed(err);
    });
  const found = [`connected to Redis (${pong})`];
  if (target.stream) {
    const type = await redis.type(target.stream);
    if (type === 'none') throw new ProbeFailure('missing', `there is no key '${target.stream}'`);
    if (type !== 'stream') throw new ProbeFailure('missing', `key '${target.stream}' is a ${type}, not a stream`);
    found.push(`stream '${target.stream}' holds ${await redis.xlen(target.stream)} entries`);
  }
  return found.join('; ');
};

/** Postgres errors that mean the credentials were refused: invalid_password, invalid_authorization_specification. */
const PG_AUTH = new Set(['28P01', '28000']);

const probePostgres: Probe = async (profile, target, closers, timeoutMs) => {
  const url = new URL(profile.url);
  const sslmode = url.searchParams.get('sslmode');
  const tls = profile.tls || (sslmode && sslmode !== 'disable' && sslmode !== 'prefer' && sslmode !== 'allow');
  const client = new pg.Client({
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: Number(url.port) || 5432,
    database: decodeURIComponent(url.pathname.slice(1)) || undefined,
    user: profile.username,
    password: profile.password,
    connectionTimeoutMillis: timeoutMs,
    ...(tls && { ssl: tlsOptions(profile.tls) ?? {} }),
  });
  client.on('error', () => {}); // a connection that breaks after the test is nobody's concern
  closers.push(() => client.end());
  try {
    await client.connect();
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code && PG_AUTH.has(code)) throw new ProbeFailure('auth', (err as Error).message);
    if (code === '3D000') throw new ProbeFailure('missing', (err as Error).message);
    if (/does not support SSL/i.test((err as Error).message)) throw new ProbeFailure('tls', (err as Error).message);
    throw classify(err);
  }
  const who = await client.query<{ user: string; db: string; version: string; replication: boolean }>(
    `SELECT current_user AS user, current_database() AS db, current_setting('server_version') AS version,
            (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS replication`,
  );
  const me = who.rows[0]!;
  const found = [`connected to database '${me.db}' as '${me.user}' (PostgreSQL ${me.version})`];
  if (target.publication) {
    const pub = await client.query<{ tables: number }>(
      'SELECT count(t.tablename)::int AS tables FROM pg_publication p LEFT JOIN pg_publication_tables t ON t.pubname = p.pubname WHERE p.pubname = $1 GROUP BY p.pubname',
      [target.publication],
    );
    if (!pub.rows[0]) throw new ProbeFailure('missing', `database '${me.db}' has no publication '${target.publication}'`);
    // Logical replication, which a Postgres changes source reads the publication with, needs the attribute.
    if (!me.replication)
      throw new ProbeFailure('missing', `user '${me.user}' lacks the REPLICATION attribute a Postgres changes source needs to read it`);
    found.push(`publication '${target.publication}' publishes ${pub.rows[0].tables} tables`);
  }
  return found.join('; ');
};

/** CONNACK codes that refuse the credentials: MQTT 3.1.1's 4 and 5, MQTT 5's 134 and 135. */
const MQTT_AUTH = new Set([4, 5, 134, 135]);

const probeMqtt: Probe = async (profile, target, closers, timeoutMs) => {
  const client = mqtt.connect(profile.url, {
    connectTimeout: timeoutMs,
    reconnectPeriod: 0,
    clean: true,
    clientId: `keyflow-test-${randomBytes(4).toString('hex')}`,
    ...(profile.username && { username: profile.username }),
    ...(profile.password && { password: profile.password }),
    ...tlsOptions(profile.tls),
  });
  closers.push(() => client.end(true));
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', (err) => {
      const code = (err as { code?: unknown }).code;
      reject(typeof code === 'number' && MQTT_AUTH.has(code) ? new ProbeFailure('auth', err.message) : classify(err));
    });
    client.once('close', () => reject(new ProbeFailure('unreachable', 'the broker closed the connection')));
  });
  const found = ['connected to the MQTT broker'];
  if (target.topic) {
    const granted = await client.subscribeAsync(target.topic, { qos: 1 });
    // 128 (MQTT 3.1.1) or a reason code of 128 and up (MQTT 5): the broker refused the subscription.
    if (granted.some((g) => g.qos >= 128)) throw new ProbeFailure('missing', `the broker refuses a subscription to '${target.topic}'`);
    found.push(`may subscribe to '${target.topic}'`);
  }
  return found.join('; ');
};

const probeHttp: Probe = async (profile, _target, closers, timeoutMs) => {
  const url = new URL(profile.url);
  const headers: Record<string, string> = { ...profile.headers };
  // A secret Authorization header, in any spelling, wins over the token and the user name.
  if (!Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')) {
    if (profile.token) headers.authorization = `Bearer ${profile.token}`;
    else if (profile.username) headers.authorization = `Basic ${Buffer.from(`${profile.username}:${profile.password ?? ''}`).toString('base64')}`;
  }
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  // Any answer means the host is there: HEAD asks for nothing to be done.
  const status = await new Promise<{ code: number; text: string }>((resolve, reject) => {
    const req = send(url, { method: 'HEAD', headers, timeout: timeoutMs, ...tlsOptions(profile.tls) }, (res) => {
      res.resume();
      resolve({ code: res.statusCode ?? 0, text: res.statusMessage ?? '' });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    closers.push(() => req.destroy());
    req.end();
  }).catch((err) => {
    throw classify(err);
  });
  if (status.code === 401 || status.code === 403) throw new ProbeFailure('auth', `HTTP ${status.code} ${status.text}`.trim());
  return `the server answered HEAD with HTTP ${status.code} ${status.text}`.trim();
};

const PROBES = { nats: probeNats, redis: probeRedis, postgres: probePostgres, mqtt: probeMqtt, http: probeHttp } as const satisfies Record<
  string,
  Probe
>;
