import { CONNECTION_KINDS, connectionName, type ConnectionKind } from '@keyflow/core';
import { z } from 'zod';

/**
 * Named connection profiles (issue 14): how connectors reach NATS, Redis, Postgres, MQTT or an HTTP endpoint. Every
 * role reads them, never their secrets (a password, a token, a secret header's value); admins make and change them.
 */
export const connectionKindSchema = z.enum(CONNECTION_KINDS);

/** The URL schemes each kind takes. */
export const CONNECTION_SCHEMES: Record<ConnectionKind, readonly string[]> = {
  nats: ['nats', 'tls'],
  redis: ['redis', 'rediss'],
  postgres: ['postgresql', 'postgres'],
  mqtt: ['mqtt', 'mqtts', 'ws', 'wss'],
  http: ['http', 'https'],
};

/** A URL of each kind, as a form's placeholder. */
export const CONNECTION_URL_EXAMPLES: Record<ConnectionKind, string> = {
  nats: 'nats://127.0.0.1:4222',
  redis: 'redis://127.0.0.1:6379/0',
  postgres: 'postgresql://db.example.com:5432/app',
  mqtt: 'mqtt://127.0.0.1:1883',
  http: 'https://hooks.example.com/keyflow',
};

/** The kinds a token authenticates (NATS token auth, an HTTP bearer token); the others take a user name and password. */
export const TOKEN_KINDS: readonly ConnectionKind[] = ['nats', 'http'];

/** Why `url` is no URL of a `kind` connection (NATS takes several, comma-separated); undefined when it is one. */
export function connectionUrlProblem(kind: ConnectionKind, url: string): string | undefined {
  const schemes = CONNECTION_SCHEMES[kind];
  const parts = kind === 'nats' ? url.split(',').map((u) => u.trim()) : [url.trim()];
  for (const part of parts) {
    let parsed: URL;
    try {
      parsed = new URL(part);
    } catch {
      return `not a URL: ${CONNECTION_URL_EXAMPLES[kind]}, for example`;
    }
    const scheme = parsed.protocol.replace(/:$/, '');
    if (!schemes.includes(scheme)) return `a ${kind} URL starts with ${schemes.map((s) => `${s}://`).join(' or ')}`;
    if (!parsed.hostname) return 'the URL names no host';
    // A URL's credentials would be stored, and shown, in clear.
    if (parsed.username || parsed.password) return 'put the user name and password in their own fields, not in the URL';
  }
  return undefined;
}

const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/, 'a header name: letters, digits and - (e.g. Authorization)');
const headerValue = z
  .string()
  .max(8192)
  .regex(/^[^\r\n]*$/, 'a header value is one line');

export const connectionTlsSchema = z
  .object({
    /** CA certificates (PEM) to trust instead of the system's. */
    ca: z.string().max(65_536).optional(),
    /** false accepts any server certificate: for testing only. */
    rejectUnauthorized: z.boolean().optional(),
    /** The name the server's certificate must have, when the URL's host is not it. */
    servername: z.string().max(255).optional(),
  })
  .strict();
export type ConnectionTls = z.infer<typeof connectionTlsSchema>;

/** A secret in a change: left out, it stays as it is; null or '' clears it. */
const secret = (max: number) => z.string().max(max).nullable().optional();

/**
 * A connection as an admin writes it (POST, and PUT, which replaces everything but the secrets): a secret left out
 * is kept, null or '' clears it. `secretHeaders` likewise, per header.
 */
export const connectionBody = z
  .object({
    name: connectionName,
    kind: connectionKindSchema,
    url: z.string().trim().min(1, 'a URL is needed').max(2048),
    username: z.string().max(256).nullable().optional(),
    password: secret(1024),
    token: secret(4096),
    tls: connectionTlsSchema.nullable().optional(),
    /** http: headers sent as they are, shown to everyone. */
    headers: z.record(headerName, headerValue).optional(),
    /** http: headers whose values are secret (e.g. Authorization). */
    secretHeaders: z.record(headerName, headerValue.nullable()).optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    const url = connectionUrlProblem(b.kind, b.url);
    if (url) ctx.addIssue({ code: 'custom', path: ['url'], message: url });
    if (b.token && !TOKEN_KINDS.includes(b.kind))
      ctx.addIssue({ code: 'custom', path: ['token'], message: `a ${b.kind} connection takes a user name and password, no token` });
    // Clearing secret headers (null) is how a connection that is no longer http gets rid of them.
    const sends = { headers: Object.keys(b.headers ?? {}).length > 0, secretHeaders: Object.values(b.secretHeaders ?? {}).some(Boolean) };
    for (const field of ['headers', 'secretHeaders'] as const)
      if (b.kind !== 'http' && sends[field]) ctx.addIssue({ code: 'custom', path: [field], message: 'only an http connection sends headers' });
  });
export type ConnectionBody = z.infer<typeof connectionBody>;

export const connectionSchema = z.object({
  id: z.string(),
  name: z.string(),
  kind: connectionKindSchema,
  url: z.string(),
  username: z.string().nullable(),
  tls: connectionTlsSchema.nullable(),
  headers: z.record(z.string(), z.string()),
  /** The names of the secret headers; their values are never shown. */
  secretHeaders: z.array(z.string()),
  hasPassword: z.boolean(),
  hasToken: z.boolean(),
  /** Who made it, as the audit trail labels them. */
  createdBy: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  /** The pipelines whose latest version names it. */
  usedBy: z.array(z.string()),
});
export type Connection = z.infer<typeof connectionSchema>;

export const connectionIdParams = z.object({ id: z.uuid() }).strict();

/** What a test also checks exists: a JetStream stream or a subject a stream captures (NATS), a stream key (Redis), a publication (Postgres), a topic it may subscribe to (MQTT). */
export const connectionTestBody = z
  .object({
    stream: z.string().trim().min(1).max(512).optional(),
    subject: z.string().trim().min(1).max(255).optional(),
    publication: z.string().trim().min(1).max(63).optional(),
    topic: z.string().trim().min(1).max(255).optional(),
  })
  .strict();
export type ConnectionTestBody = z.infer<typeof connectionTestBody>;

/** A test's answer: whether the host answered, accepted the credentials and has what was asked for, and how long it took. */
export const connectionTestResultSchema = z.object({ ok: z.boolean(), message: z.string(), latencyMs: z.number() });
export type ConnectionTestResult = z.infer<typeof connectionTestResultSchema>;
