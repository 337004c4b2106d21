'use client';
import { API_KEY_MAX_DAYS, createApiKeyBody, ROLES, type ApiKey, type CreatedApiKey, type Role } from '@keyflow/api';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useRef, useState } from 'react';
import { ConfirmDialog } from '@/components/ConfirmDialog';
import { Field } from '@/components/Field';
import { Empty, ErrorState, Loading } from '@/components/States';
import { api, errorMessage, queryKeys } from '@/lib/api';
import { ROLE_HELP } from '@/lib/auth';
import { formatAgo, formatDateTime } from '@/lib/format';
import { problemOf } from '@/lib/forms';
import { useNow } from '@/lib/useNow';

const DAYS_PROBLEM = `a whole number of days from 1 to ${API_KEY_MAX_DAYS}`;

/** The key just made, shown this once, with a copy button: the control plane keeps only its hash. */
function NewKey({ created, onDone }: { created: CreatedApiKey; onDone: () => void }) {
  const [copied, setCopied] = useState<'yes' | 'no'>();
  const field = useRef<HTMLInputElement>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(created.key);
      setCopied('yes');
    } catch {
      // No clipboard (an insecure origin, a refused permission): the key is selected for Ctrl+C instead.
      field.current?.select();
      setCopied('no');
    }
  };
  return (
    <section className="card key-once" role="status" data-testid="new-api-key">
      <h2>API key “{created.name}” created</h2>
      <p>
        <strong>Copy it now: you won’t see it again.</strong> Keyflow keeps only a hash of it. Send it as{' '}
        <code>Authorization: Bearer &lt;key&gt;</code>.
      </p>
      <div className="inline-form">
        <input
          ref={field}
          className="mono key-value"
          readOnly
          value={created.key}
          aria-label="The new API key"
          data-testid="api-key-value"
          onFocus={(e) => e.currentTarget.select()}
        />
        <button type="button" className="primary" onClick={() => void copy()}>
          {copied === 'yes' ? 'Copied' : 'Copy'}
        </button>
        <button type="button" onClick={onDone}>
          Done
        </button>
      </div>
      {copied === 'no' && <p className="warn-text small">The browser refused the clipboard: the key is selected, press Ctrl+C.</p>}
    </section>
  );
}

function CreateKeyForm({ onCreated }: { onCreated: (key: CreatedApiKey) => void }) {
  const client = useQueryClient();
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('operator');
  const [days, setDays] = useState('90');
  const [tried, setTried] = useState(false);
  const expiresInDays = /^\d+$/.test(days.trim()) ? Number(days.trim()) : NaN;
  const problems = {
    name: name.trim() ? problemOf(createApiKeyBody.shape.name, name, 'a name has at most 64 characters') : 'required, to tell keys apart',
    days: problemOf(createApiKeyBody.shape.expiresInDays, expiresInDays, DAYS_PROBLEM),
  };
  const create = useMutation({
    mutationFn: () => api.createApiKey({ name: name.trim(), role, expiresInDays }),
    onSuccess: (created) => {
      const { key: _key, ...listed } = created;
      client.setQueryData<ApiKey[]>(queryKeys.apiKeys, (list) => list && [listed, ...list]);
      void client.invalidateQueries({ queryKey: queryKeys.apiKeys, exact: true });
      setName('');
      setTried(false);
      onCreated(created);
    },
  });
  const shown = (problem: string | undefined) => (tried ? problem : undefined);
  return (
    <form
      className="card admin-form"
      aria-label="New API key"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        setTried(true);
        create.reset();
        if (!Object.values(problems).some(Boolean)) create.mutate();
      }}
    >
      <h2>New API key</h2>
      <p className="muted small">
        For scripts and CI: a key acts with its own role, on behalf of the admin who made it, until it expires or is revoked.
      </p>
      <div className="form-row">
        <Field id="new-key-name" label="Name" help="what it is for, e.g. ci-deployer" problem={shown(problems.name)}>
          <input value={name} maxLength={80} onChange={(e) => setName(e.target.value)} />
        </Field>
        <Field id="new-key-role" label="Role" help={ROLE_HELP[role]}>
          <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
            {ROLES.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </Field>
        <Field id="new-key-days" label="Expires in (days)" help={`1 to ${API_KEY_MAX_DAYS}`} problem={shown(problems.days)}>
          <input type="text" inputMode="numeric" value={days} onChange={(e) => setDays(e.target.value)} />
        </Field>
        <button type="submit" className="primary" disabled={create.isPending}>
          {create.isPending ? 'Creating…' : 'Create key'}
        </button>
      </div>
      {create.isError && (
        <p className="field-error" role="alert">
          Could not create the key: {errorMessage(create.error)}
        </p>
      )}
    </form>
  );
}

/** API keys: list (prefix only), create (the key shown once), revoke (asked first). */
export function ApiKeyAdmin() {
  const client = useQueryClient();
  const now = useNow(30_000);
  const keys = useQuery({ queryKey: queryKeys.apiKeys, queryFn: api.listApiKeys });
  const [created, setCreated] = useState<CreatedApiKey>();
  const [revoking, setRevoking] = useState<ApiKey>();
  const revoke = useMutation({
    mutationFn: (k: ApiKey) => api.revokeApiKey(k.id),
    onSuccess: (_, k) => {
      client.setQueryData<ApiKey[]>(queryKeys.apiKeys, (list) => list?.filter((x) => x.id !== k.id));
      if (created?.id === k.id) setCreated(undefined);
      setRevoking(undefined);
    },
  });
  return (
    <div className="page">
      <div className="page-head">
        <h1>API keys</h1>
      </div>
      {created && <NewKey created={created} onDone={() => setCreated(undefined)} />}
      <CreateKeyForm onCreated={setCreated} />
      {keys.isPending ? (
        <Loading label="Loading API keys…" />
      ) : keys.data === undefined ? (
        <ErrorState what="the API keys" error={keys.error} onRetry={() => void keys.refetch()} />
      ) : keys.data.length === 0 ? (
        <Empty title="No API keys yet." />
      ) : (
        <table className="table" data-testid="api-keys">
          <thead>
            <tr>
              <th>Name</th>
              <th>Key</th>
              <th>Role</th>
              <th>Created by</th>
              <th>Created</th>
              <th>Expires</th>
              <th>Last used</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {keys.data.map((k) => (
              <tr key={k.id} data-testid="api-key-row" data-name={k.name} className={k.expired ? 'expired' : undefined}>
                <td>{k.name}</td>
                <td className="mono" data-testid="api-key-start">
                  {k.start}…
                </td>
                <td>{k.role}</td>
                <td>{k.createdBy}</td>
                <td title={formatDateTime(k.createdAt)}>{formatAgo(k.createdAt, now)}</td>
                <td>
                  {formatDateTime(k.expiresAt)}
                  {k.expired && (
                    <span className="badge badge-bad expired-tag" data-testid="api-key-expired">
                      EXPIRED
                    </span>
                  )}
                </td>
                <td title={formatDateTime(k.lastUsedAt)}>{k.lastUsedAt ? formatAgo(k.lastUsedAt, now) : <span className="muted">never</span>}</td>
                <td>
                  <div className="actions">
                    <button type="button" className="link danger" onClick={() => (revoke.reset(), setRevoking(k))}>
                      Revoke
                    </button>
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <ConfirmDialog
        open={!!revoking}
        title={`Revoke API key “${revoking?.name}”?`}
        confirmLabel="Revoke key"
        busy={revoke.isPending}
        onConfirm={() => revoking && revoke.mutate(revoking)}
        onCancel={() => setRevoking(undefined)}
      >
        <p>Whatever uses it is refused from now on. This cannot be undone: make a new key instead.</p>
        {revoke.isError && (
          <p className="field-error" role="alert">
            {errorMessage(revoke.error)}
          </p>
        )}
      </ConfirmDialog>
    </div>
  );
}
