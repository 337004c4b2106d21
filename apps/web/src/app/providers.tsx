'use client';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { startLiveUpdates } from '@/lib/socket';

export function Providers({ children }: { children: React.ReactNode }) {
  const [client] = useState(
    () =>
      new QueryClient({
        defaultOptions: {
          // Socket events keep the cache current; refetches are for focus, reconnects and mutations.
          queries: { staleTime: 10_000, retry: 1, refetchOnWindowFocus: true },
        },
      }),
  );
  useEffect(() => startLiveUpdates(client), [client]);
  return <QueryClientProvider client={client}>{children}</QueryClientProvider>;
}
