'use client';
import { ErrorState, Loading } from '@/components/States';
import { useRecoveries } from '@/lib/queries';
import { useNow } from '@/lib/useNow';
import type { StartedFrom } from './recovery';
import { RecoveryList } from './RecoveryList';

/** Every recovery of the job, newest first, live through `job:recovery`. */
export function Recoveries({ jobId, startedFrom }: { jobId: string; startedFrom?: StartedFrom }) {
  const recoveries = useRecoveries(jobId);
  const now = useNow();
  return (
    <div data-testid="recoveries">
      <p className="muted small">failed → detected → running again, restarted from the last completed checkpoint; newest first</p>
      {recoveries.isPending ? (
        <Loading label="Loading recoveries…" />
      ) : recoveries.data === undefined ? (
        <ErrorState what="the recoveries" error={recoveries.error} onRetry={() => void recoveries.refetch()} />
      ) : recoveries.data === null ? (
        <p className="muted" data-testid="recoveries-unlisted">
          This control plane does not list recoveries yet (GET /jobs/:id/recoveries is not there): only those that happen while this page is open show
          up here.
        </p>
      ) : (
        <RecoveryList recoveries={recoveries.data} now={now} startedFrom={startedFrom} />
      )}
    </div>
  );
}
