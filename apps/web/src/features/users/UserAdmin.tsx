'use client';
import { createUserBody, PASSWORD_MIN, passwordSchema, ROLES, type Role, type User } from '@keyflow/api';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { ConfirmDialog } from '@/components/ConfirmDialog';
import { Field } from '@/components/Field';
import { Empty, ErrorState, Loading } from '@/components/States';
import { api, errorMessage, queryKeys } from '@/lib/api';
import { ROLE_HELP, useMe } from '@/lib/auth';
import { formatDateTime } from '@/lib/format';
import { problemOf } from '@/lib/forms';

const EMAIL_PROBLEM = 'an email address, like alice@example.com';

function CreateUserForm() {
  const client = useQueryClient();
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<Role>('viewer');
  const [tried, setTried] = useState(false);
  const problems = {
    email: problemOf(createUserBody.shape.email, email.trim(), EMAIL_PROBLEM),
    name: name.trim() ? problemOf(createUserBody.shape.name, name, 'a name has at most 100 characters') : undefined,
    password: password ? problemOf(passwordSchema, password) : 'required',
  };
  const create = useMutation({
    mutationFn: () => api.createUser({ email: email.trim(), password, role, ...(name.trim() && { name: name.trim() }) }),
    onSuccess: (user) => {
      client.setQueryData<User[]>(queryKeys.users, (list) => list && [...list, user]);
      void client.invalidateQueries({ queryKey: queryKeys.users, exact: true });
      setEmail('');
      setName('');
      setPassword('');
      setRole('viewer');
      setTried(false);
    },
  });
  const shown = (problem: string | undefined) => (tried ? problem : undefined);
  return (
    <form
      className="card admin-form"
      aria-label="New user"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        setTried(true);
        create.reset();
        if (!Object.values(problems).some(Boolean)) create.mutate();
      }}
    >
      <h2>New user</h2>
      <div className="form-row">
        <Field id="new-user-email" label="Email" problem={shown(problems.email)}>
          <input type="email" autoComplete="off" value={email} onChange={(e) => setEmail(e.target.value)} />
        </Field>
        <Field id="new-user-name" label="Name" help="optional" problem={shown(problems.name)}>
          <input value={name} maxLength={120} onChange={(e) => setName(e.target.value)} />
        </Field>
        <Field id="new-user-password" label="Password" help={`at least ${PASSWORD_MIN} characters`} problem={shown(problems.password)}>
          <input type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} />
        </Field>
        <Field id="new-user-role" label="Role" help={ROLE_HELP[role]}>
          <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
            {ROLES.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </Field>
        <button type="submit" className="primary" disabled={create.isPending}>
          {create.isPending ? 'Creating…' : 'Create user'}
        </button>
      </div>
      {create.isError && (
        <p className="field-error" role="alert">
          Could not create the user: {errorMessage(create.error)}
        </p>
      )}
      {create.isSuccess && (
        <p className="ok-text small" role="status">
          Created {create.data.email} ({create.data.role}). Give them their password by a channel of its own.
        </p>
      )}
    </form>
  );
}

function ResetPassword({ user, onSaved, onDone }: { user: User; onSaved: () => void; onDone: () => void }) {
  const [password, setPassword] = useState('');
  const [tried, setTried] = useState(false);
  const problem = password ? problemOf(passwordSchema, password) : 'required';
  const reset = useMutation({ mutationFn: () => api.updateUser(user.id, { password }), onSuccess: () => (onSaved(), onDone()) });
  return (
    <form
      className="inline-form"
      aria-label={`Reset the password of ${user.email}`}
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        setTried(true);
        if (!problem) reset.mutate();
      }}
    >
      <input
        type="password"
        autoComplete="new-password"
        aria-label="New password"
        placeholder={`at least ${PASSWORD_MIN} characters`}
        value={password}
        autoFocus
        aria-invalid={tried && !!problem}
        onChange={(e) => setPassword(e.target.value)}
        onKeyDown={(e) => e.key === 'Escape' && onDone()}
      />
      <button type="submit" disabled={reset.isPending}>
        {reset.isPending ? 'Saving…' : 'Set password'}
      </button>
      <button type="button" onClick={onDone}>
        Cancel
      </button>
      {tried && problem && <span className="field-error">{problem}</span>}
      {reset.isError && (
        <span className="field-error" role="alert">
          {errorMessage(reset.error)}
        </span>
      )}
    </form>
  );
}

function UserRow({ user, self, onDelete }: { user: User; self: boolean; onDelete: () => void }) {
  const client = useQueryClient();
  const [resetting, setResetting] = useState(false);
  const [resetDone, setResetDone] = useState(false);
  const changeRole = useMutation({
    mutationFn: (role: Role) => api.updateUser(user.id, { role }),
    onSuccess: (saved) => client.setQueryData<User[]>(queryKeys.users, (list) => list?.map((u) => (u.id === saved.id ? saved : u))),
  });
  return (
    <tr data-testid="user-row" data-email={user.email}>
      <td>
        {user.email}
        {self && <span className="kind-tag">you</span>}
      </td>
      <td>{user.name}</td>
      <td>
        <select
          aria-label={`Role of ${user.email}`}
          value={changeRole.isPending ? changeRole.variables : user.role}
          disabled={changeRole.isPending}
          onChange={(e) => (changeRole.reset(), changeRole.mutate(e.target.value as Role))}
        >
          {ROLES.map((r) => (
            <option key={r}>{r}</option>
          ))}
        </select>
        {changeRole.isError && (
          <div className="field-error" role="alert">
            {errorMessage(changeRole.error)}
          </div>
        )}
      </td>
      <td>{formatDateTime(user.createdAt)}</td>
      <td>
        {resetting ? (
          <ResetPassword user={user} onSaved={() => setResetDone(true)} onDone={() => setResetting(false)} />
        ) : (
          <div className="actions">
            {resetDone && <span className="ok-text small">password set</span>}
            <button type="button" className="link" onClick={() => (setResetDone(false), setResetting(true))}>
              Reset password
            </button>
            <button type="button" className="link danger" onClick={onDelete}>
              Delete
            </button>
          </div>
        )}
      </td>
    </tr>
  );
}

/** Users: who may sign in, with which role; create, change role, reset a password, delete (asked first). */
export function UserAdmin() {
  const client = useQueryClient();
  const me = useMe();
  const users = useQuery({ queryKey: queryKeys.users, queryFn: api.listUsers });
  const [deleting, setDeleting] = useState<User>();
  const remove = useMutation({
    mutationFn: (u: User) => api.deleteUser(u.id),
    onSuccess: (_, u) => {
      client.setQueryData<User[]>(queryKeys.users, (list) => list?.filter((x) => x.id !== u.id));
      setDeleting(undefined);
    },
  });
  return (
    <div className="page">
      <div className="page-head">
        <h1>Users</h1>
      </div>
      <CreateUserForm />
      {users.isPending ? (
        <Loading label="Loading users…" />
      ) : users.data === undefined ? (
        <ErrorState what="the users" error={users.error} onRetry={() => void users.refetch()} />
      ) : users.data.length === 0 ? (
        <Empty title="No users yet." />
      ) : (
        <table className="table" data-testid="users">
          <thead>
            <tr>
              <th>Email</th>
              <th>Name</th>
              <th>Role</th>
              <th>Created</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {users.data.map((u) => (
              <UserRow key={u.id} user={u} self={u.id === me.data?.user.id} onDelete={() => (remove.reset(), setDeleting(u))} />
            ))}
          </tbody>
        </table>
      )}
      <ConfirmDialog
        open={!!deleting}
        title={`Delete user ${deleting?.email}?`}
        confirmLabel="Delete user"
        busy={remove.isPending}
        onConfirm={() => deleting && remove.mutate(deleting)}
        onCancel={() => setDeleting(undefined)}
      >
        <p>They can no longer sign in. What they did stays in the audit trail.</p>
        {remove.isError && (
          <p className="field-error" role="alert">
            {errorMessage(remove.error)}
          </p>
        )}
      </ConfirmDialog>
    </div>
  );
}
