'use client';
import { useQueryClient } from '@tanstack/react-query';
import { usePathname, useRouter } from 'next/navigation';
import { useEffect } from 'react';
import { Loading } from '@/components/States';
import { queryKeys } from '@/lib/api';
import { SIGN_IN_PATH, signInHref, useMe } from '@/lib/auth';
import { startLiveUpdates } from '@/lib/socket';
import { userOperatorsQuery } from '@/lib/userOperators';

const here = () => window.location.pathname + window.location.search;

/**
 * Shows a page only to someone signed in: nobody signed in (a 401 from `/api/me`, or a live connection refused as
 * unauthorized) goes to the sign-in page, which brings them back here. The live connection opens once someone is
 * signed in, and again for whoever signs in next. When the control plane cannot say who is signed in (it is down),
 * the page shows what it can, its actions hidden.
 */
export function AuthGate({ children }: { children: React.ReactNode }) {
  const path = usePathname();
  const router = useRouter();
  const client = useQueryClient();
  const me = useMe();
  const signInPage = path === SIGN_IN_PATH;
  const signedOut = me.data === null;
  const userId = me.data?.user.id;

  useEffect(() => {
    if (signedOut && !signInPage) router.replace(signInHref(here()));
  }, [signedOut, signInPage, router]);

  useEffect(() => {
    if (!userId) return;
    return startLiveUpdates(client, undefined, {
      onUnauthorized: () => {
        client.removeQueries({ queryKey: queryKeys.me });
        router.replace(signInHref(here()));
      },
    });
  }, [userId, client, router]);

  // The builder and the job pages wait for the user operators: asked for as soon as someone is signed in.
  useEffect(() => {
    if (userId) void client.prefetchQuery(userOperatorsQuery);
  }, [userId, client]);

  if (signInPage) return children;
  // Only the first answer is waited for: a control plane that cannot say (it is down) leaves the page to show what it can.
  if (me.isPending && me.errorUpdatedAt === 0) return <Loading label="Checking who is signed in…" />;
  if (signedOut) return <Loading label="Taking you to sign in…" />;
  return children;
}
