'use client';
import type { JobDetail, RescaleJobBody, ScalingEvent } from '@keyflow/api';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, queryKeys } from '@/lib/api';
import { scalingEventsWith, withDesired } from '@/lib/liveCache';

/** A job's scaling events, newest first; `scaling:event` keeps them current (and a reconnect refetches them). */
export const useScalingEvents = (jobId: string) => useQuery({ queryKey: queryKeys.scaling(jobId), queryFn: () => api.listScalingEvents(jobId) });

/** Who owns which key groups, and the records per key group: no event carries them, so polled while the job runs. */
export const useKeyGroups = (jobId: string, live: boolean) =>
  useQuery({ queryKey: queryKeys.keyGroups(jobId), queryFn: () => api.keyGroups(jobId), refetchInterval: live ? 2000 : false });

/**
 * Sends a rescale. What it queued shows at once, before the socket says so: its events in the list, and its target
 * as the job's desired parallelism (the control plane recorded it before answering), so the slider stays where it
 * was released; the job is then read again for the truth.
 */
export function useRescale(jobId: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (parallelism: RescaleJobBody['parallelism']) => api.rescaleJob(jobId, { parallelism }),
    onSuccess: ({ scalingEvents }) => {
      client.setQueryData(queryKeys.job(jobId), (job: JobDetail | undefined) => job && scalingEvents.reduce(withAsked, job));
      void client.invalidateQueries({ queryKey: queryKeys.job(jobId), exact: true });
      if (client.getQueryData(queryKeys.scaling(jobId)) === undefined) return void client.invalidateQueries({ queryKey: queryKeys.scaling(jobId) });
      client.setQueryData(queryKeys.scaling(jobId), (list: typeof scalingEvents | undefined) => scalingEvents.reduce(scalingEventsWith, list ?? []));
    },
  });
}

/** A job after a rescale was queued: every operator of the chain converges to the new parallelism. */
function withAsked(job: JobDetail, e: ScalingEvent): JobDetail {
  return withDesired(job, {
    jobId: job.id,
    desiredParallelism: { ...job.desiredParallelism, ...Object.fromEntries(e.chainVertices.map((v) => [v, e.toParallelism])) },
  });
}
