'use client';
import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { useState } from 'react';
import { queryKeys } from '@/lib/api';
import { isUnauthorized, retryUnlessRefused } from '@/lib/auth';

function makeClient(): QueryClient {
  // A 401 anywhere means the session ended: asking again who is signed in sends the page to sign in.
  const onError = (error: unknown) => {
    if (isUnauthorized(error)) void client.invalidateQueries({ queryKey: queryKeys.me, exact: true });
  };
  const client: QueryClient = new QueryClient({
    queryCache: new QueryCache({ onError }),
    mutationCache: new MutationCache({ onError }),
    defaultOptions: {
      // Socket events keep the cache current; refetches are for focus, reconnects and mutations.
      queries: { staleTime: 10_000, retry: retryUnlessRefused, refetchOnWindowFocus: true },
    },
  });
  return client;
}

export function Providers({ children }: { children: React.ReactNode }) {
  const [client] = useState(makeClient);
  return <QueryClientProvider client={client}>{children}</QueryClientProvider>;
}
