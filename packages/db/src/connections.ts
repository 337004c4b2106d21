// Connection profiles as stored (the Connection model) and as connectors use them, secrets opened.
import type { PrismaClient } from './generated/client.ts';
import { openJson, sealJson, secretKey, SecretsError, type SecretKey, type SecretsErrorCode } from './secrets.ts';

/** TLS options of a connection; TLS is used when the URL's scheme says so (tls://, rediss://, https://…) or these are set. */
export interface ConnectionTls {
  /** CA certificates (PEM) to trust instead of the system's. */
  ca?: string;
  /** false accepts any server certificate (testing only). */
  rejectUnauthorized?: boolean;
  /** The name the server's certificate must have, when the URL's host is not it. */
  servername?: string;
}

/** What the `config` column holds: nothing secret, shown to every role. */
export interface ConnectionConfig {
  url: string;
  username?: string;
  tls?: ConnectionTls;
  /** http: headers sent as they are. */
  headers?: Record<string, string>;
  /** Which secrets `secret` holds, so that they can be told about without opening it. */
  hasPassword?: boolean;
  hasToken?: boolean;
  /** http: the names of the headers whose values are secret. */
  secretHeaders?: string[];
}

/** What the sealed `secret` column holds. */
export interface ConnectionSecrets {
  password?: string;
  token?: string;
  /** http: secret header values by name (e.g. Authorization). */
  headers?: Record<string, string>;
}

/** A connection as a connector uses it: everything it needs to connect, secrets opened. */
export interface ConnectionProfile {
  name: string;
  /** CONNECTION_KINDS of @keyflow/core, written out: this package does not depend on core. */
  kind: 'nats' | 'redis' | 'postgres' | 'mqtt' | 'http';
  url: string;
  username?: string;
  password?: string;
  token?: string;
  tls?: ConnectionTls;
  /** http: every header to send, plain and secret. */
  headers?: Record<string, string>;
}

/** Why a connection cannot be used: none by that name, or its secrets cannot be opened. */
export class ConnectionError extends Error {
  constructor(
    readonly code: 'not-found' | SecretsErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ConnectionError';
  }
}

/** What a connection's secret is bound to: its id, which never changes (a rename keeps it). */
export const connectionSecretContext = (id: string) => `keyflow/connection/${id}`;

/** Whether there is any secret to keep. */
export const hasSecrets = (s: ConnectionSecrets) => !!s.password || !!s.token || Object.keys(s.headers ?? {}).length > 0;

/** The sealed `secret` column of connection `id` (a copy Prisma takes as Bytes); null when there is nothing secret. */
export function sealConnectionSecrets(key: SecretKey, id: string, secrets: ConnectionSecrets): Uint8Array<ArrayBuffer> | null {
  return hasSecrets(secrets) ? new Uint8Array(sealJson(key, secrets, connectionSecretContext(id))) : null;
}

/** A stored connection's `config` column. */
export const connectionConfig = (row: { config: unknown }): ConnectionConfig => row.config as ConnectionConfig;

/** The secrets of a stored connection, opened with `key`. */
export function openConnectionSecrets(key: SecretKey, row: { id: string; secret: Uint8Array | null }): ConnectionSecrets {
  return row.secret ? openJson<ConnectionSecrets>(key, row.secret, connectionSecretContext(row.id)) : {};
}

type ConnectionRow = { id: string; name: string; kind: string; config: unknown; secret: Uint8Array | null };

/** A stored connection as connectors use it; its secrets are opened with KEYFLOW_SECRET_KEY `secretKeyText`. */
export function connectionProfile(row: ConnectionRow, secretKeyText: string | undefined): ConnectionProfile {
  const config = connectionConfig(row);
  let secrets: ConnectionSecrets = {};
  if (row.secret)
    try {
      secrets = openConnectionSecrets(secretKey(secretKeyText), row);
    } catch (err) {
      if (!(err instanceof SecretsError)) throw err;
      const hint = err.code === 'no-key' || err.code === 'wrong-key' ? ': give this process the control plane’s KEYFLOW_SECRET_KEY' : '';
      throw new ConnectionError(err.code, `connection '${row.name}': its secrets cannot be opened: ${err.message}${hint}`);
    }
  const headers = { ...config.headers, ...secrets.headers };
  return {
    name: row.name,
    kind: row.kind as ConnectionProfile['kind'],
    url: config.url,
    ...(config.username && { username: config.username }),
    ...(secrets.password && { password: secrets.password }),
    ...(secrets.token && { token: secrets.token }),
    ...(config.tls && { tls: config.tls }),
    ...(Object.keys(headers).length > 0 && { headers }),
  };
}

/**
 * The connection named `name`, secrets opened, as a connector needs it; a ConnectionError names the connection when
 * there is none or its secrets cannot be opened (KEYFLOW_SECRET_KEY missing or another than the one it was sealed with).
 */
export async function loadConnection(
  prisma: Pick<PrismaClient, 'connection'>,
  name: string,
  secretKeyText: string | undefined = process.env.KEYFLOW_SECRET_KEY,
): Promise<ConnectionProfile> {
  const row = await prisma.connection.findUnique({ where: { name } });
  if (!row) throw new ConnectionError('not-found', `there is no connection named '${name}' (see Connections in the dashboard)`);
  return connectionProfile(row, secretKeyText);
}
