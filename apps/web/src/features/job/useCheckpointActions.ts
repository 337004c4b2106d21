'use client';
import type { CheckpointDetail, JobDetail } from '@keyflow/api';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useRouter } from 'next/navigation';
import { api, queryKeys } from '@/lib/api';
import { withoutCheckpoint } from '@/lib/liveCache';

/**
 * Deploys the job's pipeline version again as a new job restoring state and source offsets from a completed
 * checkpoint or savepoint of it, at the parallelism the job last ran with (a rescale done on the job is not
 * undone by stopping and resuming it), then opens the new job (its parallelism can change there, with the sliders).
 */
export function useStartFromCheckpoint(job: Pick<JobDetail, 'pipelineId' | 'version' | 'checkpointIntervalMs' | 'plan'>) {
  const client = useQueryClient();
  const router = useRouter();
  return useMutation({
    mutationFn: (checkpointId: number) =>
      api.deployJob({
        pipelineId: job.pipelineId,
        version: job.version,
        restoreFromCheckpointId: checkpointId,
        checkpointIntervalMs: job.checkpointIntervalMs,
        parallelism: lastParallelism(job),
      }),
    onSuccess: (next) => {
      void client.invalidateQueries({ queryKey: queryKeys.jobs, exact: true });
      router.push(`/jobs/${next.id}`);
    },
  });
}

/** Each operator's parallelism in the job's plan: what it ran with last. */
function lastParallelism(job: Pick<JobDetail, 'plan'>): Record<string, number> {
  return Object.fromEntries(Object.entries(job.plan.vertices).map(([id, v]) => [id, v.parallelism]));
}

/** Takes a savepoint now; `checkpoint:triggered` and `checkpoint:completed` bring it onto the page. */
export function useTriggerSavepoint(jobId: string) {
  const client = useQueryClient();
  return useMutation({
    // A checkpoint in flight does not refuse it: the control plane takes the savepoint right after.
    mutationFn: () => api.triggerSavepoint(jobId),
    onSuccess: () => {
      void client.invalidateQueries({ queryKey: queryKeys.retainedCheckpoints(jobId), exact: true });
      // The job's audit trail now says who took it.
      void client.invalidateQueries({ queryKey: queryKeys.job(jobId), exact: true });
    },
  });
}

/**
 * Deletes a savepoint (the control plane refuses any other kind, and deletes its row too). It leaves every cached
 * list at once: the job's latest checkpoints must not offer to resume from it.
 */
export function useDeleteSavepoint(jobId: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (checkpointId: number) => api.deleteSavepoint(checkpointId),
    onSuccess: (_ok, checkpointId) => {
      const drop = (list: CheckpointDetail[] | undefined) => list && withoutCheckpoint(list, checkpointId);
      client.setQueryData(queryKeys.retainedCheckpoints(jobId), drop);
      client.setQueryData(queryKeys.checkpoints(jobId), drop);
      client.setQueryData(
        queryKeys.job(jobId),
        (job: JobDetail | undefined) => job && { ...job, latestCheckpoints: withoutCheckpoint(job.latestCheckpoints, checkpointId) },
      );
      void client.invalidateQueries({ queryKey: queryKeys.retainedCheckpoints(jobId), exact: true });
      void client.invalidateQueries({ queryKey: queryKeys.job(jobId), exact: true });
    },
  });
}
