'use client';
import type { RescaleJobBody } from '@keyflow/api';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, queryKeys } from '@/lib/api';
import { scalingEventsWith } from '@/lib/liveCache';

/** A job's scaling events, newest first; `scaling:event` keeps them current (and a reconnect refetches them). */
export const useScalingEvents = (jobId: string) => useQuery({ queryKey: queryKeys.scaling(jobId), queryFn: () => api.listScalingEvents(jobId) });

/** Who owns which key groups, and the records per key group: no event carries them, so polled while the job runs. */
export const useKeyGroups = (jobId: string, live: boolean) =>
  useQuery({ queryKey: queryKeys.keyGroups(jobId), queryFn: () => api.keyGroups(jobId), refetchInterval: live ? 2000 : false });

/** Sends a rescale; the events it queued go into the cache at once, so the node shows them before the socket does. */
export function useRescale(jobId: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (parallelism: RescaleJobBody['parallelism']) => api.rescaleJob(jobId, { parallelism }),
    onSuccess: ({ scalingEvents }) => {
      if (client.getQueryData(queryKeys.scaling(jobId)) === undefined) return void client.invalidateQueries({ queryKey: queryKeys.scaling(jobId) });
      client.setQueryData(queryKeys.scaling(jobId), (list: typeof scalingEvents | undefined) => scalingEvents.reduce(scalingEventsWith, list ?? []));
    },
  });
}
