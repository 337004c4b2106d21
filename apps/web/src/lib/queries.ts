'use client';
import { ApiRequestError, type Recovery } from '@keyflow/api';
import { useQuery } from '@tanstack/react-query';
import { api, queryKeys } from './api';

export { isActive } from '@keyflow/api';
/** States in which the control plane accepts a rescale (it runs once the job is RUNNING). */
export { RESCALABLE_STATES } from '@keyflow/api';

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

/** A job's checkpoint history (rows retention let go stay, DISCARDED); events add and update rows. */
export const useCheckpoints = (id: string) => useQuery({ queryKey: queryKeys.checkpoints(id), queryFn: () => api.listCheckpoints(id) });

/**
 * The checkpoints the control plane still keeps: every savepoint until it is deleted, and the newest completed
 * others (retention removes older ones without an event). Read again whenever a checkpoint completes.
 */
export const useRetainedCheckpoints = (id: string) =>
  useQuery({ queryKey: queryKeys.retainedCheckpoints(id), queryFn: () => api.listCheckpoints(id) });

/**
 * A job's recoveries, newest first; `job:recovery` keeps them current (and a reconnect refetches them). null when
 * the control plane does not list them (a 404: one older than the route); its events still add the recoveries
 * that happen while the page is open.
 */
export const useRecoveries = (id: string) =>
  useQuery({
    queryKey: queryKeys.recoveries(id),
    queryFn: async (): Promise<Recovery[] | null> => {
      try {
        return (await api.listRecoveries(id)).sort((a, b) => b.id - a.id);
      } catch (error) {
        if (error instanceof ApiRequestError && error.status === 404) return null;
        throw error;
      }
    },
  });

/** The latest records of a log sink (no event carries them: polled while the job runs). */
export const useSample = (jobId: string, vertexId: string, live: boolean) =>
  useQuery({
    queryKey: queryKeys.sample(jobId, vertexId),
    queryFn: () => api.sample(jobId, vertexId),
    refetchInterval: live ? 2000 : false,
  });

/** The records an operator could not process, newest first, with the reason (polled while the job runs and has some). */
export const useDeadLetters = (jobId: string, vertexId: string, live: boolean) =>
  useQuery({
    queryKey: queryKeys.deadLetters(jobId, vertexId),
    queryFn: () => api.deadLetters(jobId, vertexId),
    refetchInterval: live ? 3000 : false,
  });

/** The records a window operator took too late, newest first, with the reason (polled while the job runs). */
export const useLateRecords = (jobId: string, vertexId: string, live: boolean) =>
  useQuery({
    queryKey: queryKeys.lateRecords(jobId, vertexId),
    queryFn: () => api.lateRecords(jobId, vertexId),
    refetchInterval: live ? 3000 : false,
  });

/** The worker pool (heartbeats are not pushed over Socket.IO: polled). */
export const useWorkers = () => useQuery({ queryKey: queryKeys.workers, queryFn: api.listWorkers, refetchInterval: 2000 });

/** Connection profiles (never their secrets): the Connections page and the builder's connection fields read them. */
export const useConnections = () => useQuery({ queryKey: queryKeys.connections, queryFn: api.listConnections });
