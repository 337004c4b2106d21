import { connectionBody, TOKEN_KINDS, type Connection, type ConnectionBody, type ConnectionTestBody } from '@keyflow/api';
import type { ConnectionKind } from '@keyflow/core';

/**
 * What the connection form holds, as typed. A secret field left empty keeps the stored secret (when editing) or
 * sets none (when creating); its "remove" box clears it.
 */
export interface ConnectionDraft {
  name: string;
  kind: ConnectionKind;
  url: string;
  username: string;
  password: string;
  removePassword: boolean;
  token: string;
  removeToken: boolean;
  useTls: boolean;
  ca: string;
  verifyCertificate: boolean;
  servername: string;
  /** http: plain headers, one `Name: value` a line. */
  headers: string;
  /** http: a secret header to add or replace. */
  secretHeaderName: string;
  secretHeaderValue: string;
  /** http: stored secret headers to remove. */
  removeSecretHeaders: string[];
}

export const emptyDraft = (kind: ConnectionKind = 'nats'): ConnectionDraft => ({
  name: '',
  kind,
  url: '',
  username: '',
  password: '',
  removePassword: false,
  token: '',
  removeToken: false,
  useTls: false,
  ca: '',
  verifyCertificate: true,
  servername: '',
  headers: '',
  secretHeaderName: 'Authorization',
  secretHeaderValue: '',
  removeSecretHeaders: [],
});

/** The form for a stored connection: what it shows, secrets empty (they are never sent to the browser). */
export function draftOf(c: Connection): ConnectionDraft {
  return {
    ...emptyDraft(c.kind),
    name: c.name,
    url: c.url,
    username: c.username ?? '',
    useTls: c.tls !== null,
    ca: c.tls?.ca ?? '',
    verifyCertificate: c.tls?.rejectUnauthorized !== false,
    servername: c.tls?.servername ?? '',
    headers: headerLines(c.headers),
  };
}

export const headerLines = (headers: Record<string, string>) =>
  Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}`)
    .join('\n');

/** `Name: value` lines as headers; the first line that is none says so. */
export function parseHeaderLines(text: string): { ok: true; headers: Record<string, string> } | { ok: false; message: string } {
  const headers: Record<string, string> = {};
  for (const [n, line] of text.split('\n').entries()) {
    if (!line.trim()) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) return { ok: false, message: `line ${n + 1}: one header a line, as Name: value` };
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return { ok: true, headers };
}

/** A secret field's part of a change: what was typed, null to remove the stored one, nothing to keep it. */
function secretChange(typed: string, remove: boolean): { value: string | null } | undefined {
  if (typed) return { value: typed };
  return remove ? { value: null } : undefined;
}

/** Whether a kind takes a token (NATS token auth, an HTTP bearer token). */
export const takesToken = (kind: ConnectionKind) => TOKEN_KINDS.includes(kind);

/**
 * The request body for a draft, or the problems of its fields (by field name, in the API's words). `stored` is the
 * connection being edited: a secret its new kind no longer takes is cleared with the change.
 */
export function bodyOf(
  draft: ConnectionDraft,
  stored?: Connection,
): { ok: true; body: ConnectionBody } | { ok: false; problems: Record<string, string> } {
  const http = draft.kind === 'http';
  const headers = http ? parseHeaderLines(draft.headers) : { ok: true as const, headers: {} };
  const secretHeaders: Record<string, string | null> = {};
  for (const name of stored?.secretHeaders ?? []) if (!http || draft.removeSecretHeaders.includes(name)) secretHeaders[name] = null;
  if (http && draft.secretHeaderName.trim() && draft.secretHeaderValue) secretHeaders[draft.secretHeaderName.trim()] = draft.secretHeaderValue;
  const password = secretChange(draft.password, draft.removePassword);
  // A token the new kind does not take goes with the change.
  const token = takesToken(draft.kind) ? secretChange(draft.token, draft.removeToken) : stored?.hasToken ? { value: null } : undefined;
  const candidate = {
    name: draft.name.trim(),
    kind: draft.kind,
    url: draft.url.trim(),
    username: draft.username.trim() || null,
    ...(password && { password: password.value }),
    ...(token && { token: token.value }),
    tls: draft.useTls
      ? {
          ...(draft.ca.trim() && { ca: draft.ca.trim() }),
          ...(!draft.verifyCertificate && { rejectUnauthorized: false }),
          ...(draft.servername.trim() && { servername: draft.servername.trim() }),
        }
      : null,
    ...(http && headers.ok && { headers: headers.headers }),
    ...(Object.keys(secretHeaders).length > 0 && { secretHeaders }),
  };
  const parsed = connectionBody.safeParse(candidate);
  const problems: Record<string, string> = {};
  if (!headers.ok) problems.headers = headers.message;
  if (!parsed.success) for (const issue of parsed.error.issues) problems[String(issue.path[0] ?? 'name')] ??= issue.message;
  return parsed.success && headers.ok ? { ok: true, body: parsed.data } : { ok: false, problems };
}

/** What a stored connection keeps secret, in words ("password, token"); "none". */
export function secretsText(c: Pick<Connection, 'hasPassword' | 'hasToken' | 'secretHeaders'>): string {
  const parts = [...(c.hasPassword ? ['password'] : []), ...(c.hasToken ? ['token'] : []), ...c.secretHeaders.map((h) => `header ${h}`)];
  return parts.length ? parts.join(', ') : 'none';
}

/** What a test of each kind may also check exists, with the field's label. */
export const TEST_TARGETS: Record<ConnectionKind, { field: keyof ConnectionTestBody; label: string; placeholder: string }[]> = {
  nats: [
    { field: 'stream', label: 'Stream', placeholder: 'ORDERS' },
    { field: 'subject', label: 'Subject', placeholder: 'orders.*' },
  ],
  redis: [{ field: 'stream', label: 'Stream key', placeholder: 'orders' }],
  postgres: [{ field: 'publication', label: 'Publication', placeholder: 'keyflow' }],
  mqtt: [{ field: 'topic', label: 'Topic', placeholder: 'sensors/#' }],
  http: [],
};
