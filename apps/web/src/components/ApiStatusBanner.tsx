'use client';
import { ApiRequestError } from '@keyflow/api';
import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef } from 'react';
import { errorMessage } from '@/lib/api';
import { useHealth } from '@/lib/queries';
import { useLiveStatus } from '@/lib/socket';

/** Says plainly when the control plane cannot be reached, and refetches everything once it answers again. */
export function ApiStatusBanner() {
  const health = useHealth();
  const live = useLiveStatus();
  const client = useQueryClient();
  const wasDown = useRef(false);
  // A refusal (nobody signed in yet) is an answer: the control plane is up.
  const down = health.isError && !(health.error instanceof ApiRequestError && health.error.status < 500);

  useEffect(() => {
    if (down) wasDown.current = true;
    else if (!health.isPending && wasDown.current) {
      wasDown.current = false;
      void client.invalidateQueries();
    }
  }, [down, health.isPending, client]);

  if (down)
    return (
      <div className="banner banner-error" role="alert" data-testid="api-down">
        <strong>The Keyflow control plane is unreachable.</strong> {errorMessage(health.error)}. What you see may be out of date; retrying every 5 s.
      </div>
    );
  if (live === 'reconnecting')
    return (
      <div className="banner banner-warn" role="status">
        Live updates interrupted: reconnecting. The page will refresh its data when the connection is back.
      </div>
    );
  return null;
}
