'use client';
import { CONNECTION_URL_EXAMPLES, connectionKindSchema, type Connection, type ConnectionTestBody, type ConnectionTestResult } from '@keyflow/api';
import type { ConnectionKind } from '@keyflow/core';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { Fragment, useState } from 'react';
import { ConfirmDialog } from '@/components/ConfirmDialog';
import { Field } from '@/components/Field';
import { Empty, ErrorState, Loading } from '@/components/States';
import { api, errorMessage, queryKeys } from '@/lib/api';
import { useMayAct } from '@/lib/auth';
import { useConnections } from '@/lib/queries';
import { bodyOf, draftOf, emptyDraft, secretsText, takesToken, TEST_TARGETS, type ConnectionDraft } from './connectionForm';

const KIND_LABELS: Record<ConnectionKind, string> = { nats: 'NATS', redis: 'Redis', postgres: 'Postgres', mqtt: 'MQTT', http: 'HTTP' };

/** A secret's field: empty keeps what is stored ("unchanged"), the box removes it. */
function SecretField(props: {
  id: string;
  label: string;
  stored: boolean;
  value: string;
  remove: boolean;
  problem?: string;
  onValue: (v: string) => void;
  onRemove: (r: boolean) => void;
}) {
  return (
    <div>
      <Field id={props.id} label={props.label} problem={props.problem} help={props.stored ? 'set: leave empty to keep it' : 'optional'}>
        <input
          type="password"
          autoComplete="new-password"
          value={props.value}
          placeholder={props.stored ? 'unchanged' : ''}
          disabled={props.remove}
          onChange={(e) => props.onValue(e.target.value)}
        />
      </Field>
      {props.stored && (
        <label className="small">
          <input type="checkbox" checked={props.remove} onChange={(e) => props.onRemove(e.target.checked)} /> remove the {props.label.toLowerCase()}
        </label>
      )}
    </div>
  );
}

/** Make or change a connection (admins). Secrets are write-only: the form never has them to show. */
function ConnectionForm({ stored, initialKind, onDone }: { stored?: Connection; initialKind?: ConnectionKind; onDone: () => void }) {
  const client = useQueryClient();
  const [draft, setDraft] = useState<ConnectionDraft>(() => (stored ? draftOf(stored) : emptyDraft(initialKind)));
  const [tried, setTried] = useState(false);
  const set = <K extends keyof ConnectionDraft>(key: K, value: ConnectionDraft[K]) => setDraft((d) => ({ ...d, [key]: value }));
  const result = bodyOf(draft, stored);
  const problem = (field: string) => (tried && !result.ok ? result.problems[field] : undefined);
  const save = useMutation({
    mutationFn: () => {
      if (!result.ok) throw new Error('fix the fields marked first');
      return stored ? api.updateConnection(stored.id, result.body) : api.createConnection(result.body);
    },
    onSuccess: () => {
      void client.invalidateQueries({ queryKey: queryKeys.connections });
      onDone();
    },
  });
  const id = (field: string) => `connection-${field}`;
  return (
    <form
      className="card admin-form connection-form"
      aria-label={stored ? `Edit connection ${stored.name}` : 'New connection'}
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        setTried(true);
        save.reset();
        if (result.ok) save.mutate();
      }}
    >
      <h2>{stored ? `Edit ${stored.name}` : 'New connection'}</h2>
      <div className="form-row">
        <Field id={id('name')} label="Name" help="what pipelines name it by, e.g. orders-nats" problem={problem('name')}>
          <input value={draft.name} maxLength={64} onChange={(e) => set('name', e.target.value)} />
        </Field>
        <Field id={id('kind')} label="Kind">
          <select value={draft.kind} onChange={(e) => set('kind', e.target.value as ConnectionKind)}>
            {connectionKindSchema.options.map((k) => (
              <option key={k} value={k}>
                {KIND_LABELS[k]}
              </option>
            ))}
          </select>
        </Field>
        <Field id={id('url')} label="URL" help={draft.kind === 'nats' ? 'several servers: comma-separated' : undefined} problem={problem('url')}>
          <input
            className="mono url-input"
            value={draft.url}
            placeholder={CONNECTION_URL_EXAMPLES[draft.kind]}
            onChange={(e) => set('url', e.target.value)}
          />
        </Field>
      </div>
      <div className="form-row">
        <Field id={id('username')} label="User name" help="optional" problem={problem('username')}>
          <input autoComplete="off" value={draft.username} onChange={(e) => set('username', e.target.value)} />
        </Field>
        <SecretField
          id={id('password')}
          label="Password"
          stored={!!stored?.hasPassword}
          value={draft.password}
          remove={draft.removePassword}
          problem={problem('password')}
          onValue={(v) => set('password', v)}
          onRemove={(r) => set('removePassword', r)}
        />
        {takesToken(draft.kind) && (
          <SecretField
            id={id('token')}
            label="Token"
            stored={!!stored?.hasToken}
            value={draft.token}
            remove={draft.removeToken}
            problem={problem('token')}
            onValue={(v) => set('token', v)}
            onRemove={(r) => set('removeToken', r)}
          />
        )}
      </div>
      {draft.kind === 'http' && (
        <div className="form-row">
          <Field
            id={id('headers')}
            label="Headers"
            help="sent with every request, shown to everyone: one Name: value a line"
            problem={problem('headers')}
          >
            <textarea rows={3} className="mono" value={draft.headers} onChange={(e) => set('headers', e.target.value)} />
          </Field>
          <Field id={id('secret-header-name')} label="Secret header" help="its value is kept secret">
            <input value={draft.secretHeaderName} onChange={(e) => set('secretHeaderName', e.target.value)} />
          </Field>
          <Field id={id('secret-header-value')} label="Secret header value" problem={problem('secretHeaders')}>
            <input
              type="password"
              autoComplete="new-password"
              value={draft.secretHeaderValue}
              placeholder={stored?.secretHeaders.includes(draft.secretHeaderName.trim()) ? 'unchanged' : 'e.g. Bearer …'}
              onChange={(e) => set('secretHeaderValue', e.target.value)}
            />
          </Field>
          {stored?.secretHeaders.map((h) => (
            <label key={h} className="small">
              <input
                type="checkbox"
                checked={draft.removeSecretHeaders.includes(h)}
                onChange={(e) =>
                  set('removeSecretHeaders', e.target.checked ? [...draft.removeSecretHeaders, h] : draft.removeSecretHeaders.filter((x) => x !== h))
                }
              />{' '}
              remove the secret header {h}
            </label>
          ))}
        </div>
      )}
      <div className="form-row">
        <label className="small">
          <input type="checkbox" checked={draft.useTls} onChange={(e) => set('useTls', e.target.checked)} /> TLS options (a tls://, rediss://,
          mqtts:// or https:// URL uses TLS anyway)
        </label>
      </div>
      {draft.useTls && (
        <div className="form-row">
          <Field id={id('ca')} label="CA certificates (PEM)" help="to trust instead of the system's; empty: the system's" problem={problem('tls')}>
            <textarea rows={3} className="mono" value={draft.ca} onChange={(e) => set('ca', e.target.value)} />
          </Field>
          <Field id={id('servername')} label="Server name" help="the certificate's name, when the URL's host is not it">
            <input value={draft.servername} onChange={(e) => set('servername', e.target.value)} />
          </Field>
          <label className="small">
            <input type="checkbox" checked={draft.verifyCertificate} onChange={(e) => set('verifyCertificate', e.target.checked)} /> verify the
            server’s certificate (turn off for testing only)
          </label>
        </div>
      )}
      <div className="form-row">
        <button type="submit" className="primary" disabled={save.isPending}>
          {save.isPending ? 'Saving…' : stored ? 'Save connection' : 'Create connection'}
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
      {save.isError && (
        <p className="field-error" role="alert">
          Could not save the connection: {errorMessage(save.error)}
        </p>
      )}
    </form>
  );
}

/** Test connection: reachable, signed in, and (optionally) the stream, subject, publication or topic there. */
function TestPanel({ connection }: { connection: Connection }) {
  const [target, setTarget] = useState<ConnectionTestBody>({});
  const run = useMutation<ConnectionTestResult>({
    mutationFn: () =>
      api.testConnection(connection.id, Object.fromEntries(Object.entries(target).filter(([, v]) => v?.trim())) as ConnectionTestBody),
  });
  return (
    <form
      className="inline-form"
      aria-label={`Test connection ${connection.name}`}
      onSubmit={(e) => {
        e.preventDefault();
        run.mutate();
      }}
    >
      {TEST_TARGETS[connection.kind].map((t) => (
        <input
          key={t.field}
          aria-label={`${t.label} (optional)`}
          placeholder={`${t.label}, e.g. ${t.placeholder}`}
          value={target[t.field] ?? ''}
          onChange={(e) => setTarget((x) => ({ ...x, [t.field]: e.target.value }))}
        />
      ))}
      <button type="submit" disabled={run.isPending}>
        {run.isPending ? 'Testing…' : 'Test connection'}
      </button>
      {run.data && (
        <span className={run.data.ok ? 'ok-text' : 'field-error'} role="status" data-testid="connection-test-result" data-ok={run.data.ok}>
          {run.data.ok ? '✓' : '✗'} {run.data.message} <span className="muted small">({run.data.latencyMs} ms)</span>
        </span>
      )}
      {run.isError && (
        <span className="field-error" role="alert">
          Could not test: {errorMessage(run.error)}
        </span>
      )}
    </form>
  );
}

/**
 * Connections: how connectors reach NATS, Redis, Postgres, MQTT and HTTP endpoints. Everyone sees them (never their
 * secrets); operators test them; admins make, change and delete them. `newKind` opens the form for a new one.
 */
export function ConnectionsView({ newKind }: { newKind?: ConnectionKind }) {
  const client = useQueryClient();
  const connections = useConnections();
  const admin = useMayAct('admin');
  const operator = useMayAct('operator');
  const [editing, setEditing] = useState<Connection | 'new' | undefined>(newKind ? 'new' : undefined);
  const [testing, setTesting] = useState<string>();
  const [deleting, setDeleting] = useState<Connection>();
  const remove = useMutation({
    mutationFn: (c: Connection) => api.deleteConnection(c.id),
    onSuccess: (_, c) => {
      client.setQueryData<Connection[]>(queryKeys.connections, (list) => list?.filter((x) => x.id !== c.id));
      setDeleting(undefined);
    },
  });
  return (
    <div className="page">
      <div className="page-head">
        <div>
          <h1>Connections</h1>
          <p className="muted">
            How sources and sinks reach NATS, Redis, Postgres, MQTT and HTTP endpoints. Passwords, tokens and secret headers are stored encrypted and
            never shown again.{!admin && ' Only an admin makes and changes connections.'}
          </p>
        </div>
        {admin && editing === undefined && (
          <button type="button" className="primary" onClick={() => setEditing('new')}>
            New connection
          </button>
        )}
      </div>
      {admin && editing !== undefined && (
        <ConnectionForm
          key={editing === 'new' ? 'new' : editing.id}
          stored={editing === 'new' ? undefined : editing}
          initialKind={newKind}
          onDone={() => setEditing(undefined)}
        />
      )}
      {connections.isPending ? (
        <Loading label="Loading connections…" />
      ) : connections.data === undefined ? (
        <ErrorState what="the connections" error={connections.error} onRetry={() => void connections.refetch()} />
      ) : connections.data.length === 0 ? (
        <Empty title="No connections yet.">{admin ? 'Make one with New connection.' : 'An admin makes them.'}</Empty>
      ) : (
        <table className="table" data-testid="connections">
          <thead>
            <tr>
              <th>Name</th>
              <th>Kind</th>
              <th>URL</th>
              <th>User</th>
              <th>Secrets</th>
              <th>Used by</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {connections.data.map((c) => (
              <Fragment key={c.id}>
                <tr data-testid="connection-row" data-name={c.name}>
                  <td>{c.name}</td>
                  <td>{KIND_LABELS[c.kind]}</td>
                  <td className="mono">
                    {c.url}
                    {c.tls && <span className="kind-tag">TLS</span>}
                  </td>
                  <td>{c.username ?? <span className="muted">none</span>}</td>
                  <td data-testid="connection-secrets">{secretsText(c)}</td>
                  <td>
                    {c.usedBy.length ? (
                      c.usedBy.map((p, n) => (
                        <span key={p}>
                          {n > 0 && ', '}
                          {p}
                        </span>
                      ))
                    ) : (
                      <span className="muted">no pipeline</span>
                    )}
                  </td>
                  <td>
                    <div className="actions">
                      {operator && (
                        <button type="button" className="link" onClick={() => setTesting(testing === c.id ? undefined : c.id)}>
                          Test
                        </button>
                      )}
                      {admin && (
                        <button type="button" className="link" onClick={() => setEditing(c)}>
                          Edit
                        </button>
                      )}
                      {admin && (
                        <button type="button" className="link danger" onClick={() => (remove.reset(), setDeleting(c))}>
                          Delete
                        </button>
                      )}
                    </div>
                  </td>
                </tr>
                {testing === c.id && (
                  <tr className="detail">
                    <td colSpan={7}>
                      <TestPanel connection={c} />
                    </td>
                  </tr>
                )}
              </Fragment>
            ))}
          </tbody>
        </table>
      )}
      <ConfirmDialog
        open={!!deleting}
        title={`Delete connection “${deleting?.name}”?`}
        confirmLabel="Delete connection"
        busy={remove.isPending}
        onConfirm={() => deleting && remove.mutate(deleting)}
        onCancel={() => setDeleting(undefined)}
      >
        <p>Its secrets are deleted with it. A connection that a pipeline or a running job names cannot be deleted.</p>
        {remove.isError && (
          <p className="field-error" role="alert" data-testid="delete-connection-error">
            {errorMessage(remove.error)}
          </p>
        )}
      </ConfirmDialog>
    </div>
  );
}
