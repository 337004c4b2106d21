'use client';
import type { JobState } from '@keyflow/api';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { api, queryKeys } from './api';
import { withSeenHistory } from './liveCache';

export const ACTIVE_STATES: readonly JobState[] = ['CREATED', 'SCHEDULING', 'RUNNING', 'RESCALING', 'RECOVERING', 'STOPPING'];
export const isActive = (state: JobState) => ACTIVE_STATES.includes(state);

/** The control plane's health, polled: drives the "API unreachable" banner. */
export const useHealth = () =>
  useQuery({ queryKey: queryKeys.health, queryFn: api.health, refetchInterval: 5000, retry: false, refetchOnWindowFocus: true });

export const usePipelines = () => useQuery({ queryKey: queryKeys.pipelines, queryFn: api.listPipelines });

export const usePipeline = (id: string | undefined) =>
  useQuery({ queryKey: queryKeys.pipeline(id ?? ''), queryFn: () => api.getPipeline(id!), enabled: !!id });

/** Jobs; their states stay current through `job:state`, which every client receives. */
export const useJobs = () => useQuery({ queryKey: queryKeys.jobs, queryFn: () => api.listJobs() });

/** A job's detail; socket events keep its state, metrics and latest checkpoints current. */
export const useJob = (id: string) => useQuery({ queryKey: queryKeys.job(id), queryFn: () => api.getJob(id) });

/** A job's checkpoint history; events add and update rows, and rows past the server's retention stay on the page. */
export function useCheckpoints(id: string) {
  const client = useQueryClient();
  return useQuery({
    queryKey: queryKeys.checkpoints(id),
    queryFn: async () => withSeenHistory(await api.listCheckpoints(id), client.getQueryData(queryKeys.checkpoints(id))),
  });
}

/** The latest records of a log sink (no event carries them: polled while the job runs). */
export const useSample = (jobId: string, vertexId: string, live: boolean) =>
  useQuery({
    queryKey: queryKeys.sample(jobId, vertexId),
    queryFn: () => api.sample(jobId, vertexId),
    refetchInterval: live ? 2000 : false,
  });

/** The records an operator could not process, with the reason (polled while the job runs and has some). */
export const useDeadLetters = (jobId: string, vertexId: string, live: boolean) =>
  useQuery({
    queryKey: queryKeys.deadLetters(jobId, vertexId),
    queryFn: () => api.deadLetters(jobId, vertexId),
    refetchInterval: live ? 3000 : false,
  });

/** The worker pool (heartbeats are not pushed over Socket.IO: polled). */
export const useWorkers = () => useQuery({ queryKey: queryKeys.workers, queryFn: api.listWorkers, refetchInterval: 2000 });
