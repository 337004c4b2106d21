'use client';
import { mayAct, type Role } from '@keyflow/api';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import Link from 'next/link';
import { usePathname } from 'next/navigation';
import { api, errorMessage } from '@/lib/api';
import { isUnauthorized, ROLE_HELP, SIGN_IN_PATH, useMe } from '@/lib/auth';
import { stopLiveUpdates, useLiveStatus } from '@/lib/socket';

const LINKS: { href: string; label: string; match: (p: string) => boolean; needs?: Role }[] = [
  { href: '/', label: 'Jobs', match: (p) => p === '/' || p.startsWith('/jobs') },
  { href: '/pipelines', label: 'Pipelines', match: (p) => p.startsWith('/pipelines') },
  { href: '/workers', label: 'Workers', match: (p) => p.startsWith('/workers') },
  { href: '/connections', label: 'Connections', match: (p) => p.startsWith('/connections') },
  { href: '/users', label: 'Users', match: (p) => p.startsWith('/users'), needs: 'admin' },
  { href: '/api-keys', label: 'API keys', match: (p) => p.startsWith('/api-keys'), needs: 'admin' },
  { href: '/audit', label: 'Audit', match: (p) => p.startsWith('/audit'), needs: 'admin' },
];

/** Who is signed in, with their role, and the way out. */
function Account() {
  const me = useMe();
  const client = useQueryClient();
  const signOut = useMutation({
    mutationFn: async () => {
      stopLiveUpdates();
      try {
        await api.signOut();
      } catch (error) {
        // Already signed out is signed out; anything else is said, and the page is left as it is.
        if (!isUnauthorized(error)) throw error;
      }
    },
    onSuccess: () => {
      client.clear();
      // A fresh load: nothing of this session stays in the page's memory.
      window.location.replace(SIGN_IN_PATH);
    },
  });
  if (!me.data) return null;
  return (
    <div className="account" data-testid="account">
      <span className="account-email" data-testid="account-email">
        {me.data.user.email}
      </span>
      <span className={`role role-${me.data.role}`} data-testid="account-role" title={ROLE_HELP[me.data.role]}>
        {me.data.role}
      </span>
      <button type="button" className="nav-button" onClick={() => signOut.mutate()} disabled={signOut.isPending}>
        {signOut.isPending ? 'Signing out…' : 'Sign out'}
      </button>
      {signOut.isError && (
        <span className="nav-error" role="alert">
          Could not sign out: {errorMessage(signOut.error)}
        </span>
      )}
    </div>
  );
}

export function Nav() {
  const path = usePathname();
  const live = useLiveStatus();
  const me = useMe();
  // Nobody signed in sees no way in but the sign-in page; admin entries wait until the role is known.
  const signedOut = me.data === null || path === SIGN_IN_PATH;
  const role = me.data?.role;
  return (
    <header className="nav">
      <Link href="/" className="brand">
        <span className="brand-mark" aria-hidden>
          ⟿
        </span>
        Keyflow
      </Link>
      <nav>
        {!signedOut &&
          LINKS.filter((l) => !l.needs || (role && mayAct(role, l.needs))).map((l) => (
            <Link key={l.href} href={l.href} className={l.match(path) ? 'active' : undefined}>
              {l.label}
            </Link>
          ))}
      </nav>
      {!signedOut && (
        <span className={`live live-${live}`} data-testid="live-status" title="Socket.IO connection to the control plane">
          <span className="dot" aria-hidden />
          {live === 'live' ? 'Live' : live === 'connecting' ? 'Connecting…' : 'Reconnecting…'}
        </span>
      )}
      <Account />
    </header>
  );
}
