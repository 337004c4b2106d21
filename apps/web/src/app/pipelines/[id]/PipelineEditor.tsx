'use client';
import { useSearchParams } from 'next/navigation';
import { ErrorState, Loading } from '@/components/States';
import { PipelineBuilder } from '@/features/builder/PipelineBuilder';
import { usePipeline } from '@/lib/queries';

/** The builder on a stored pipeline, showing `?version=` (the latest by default). */
export function PipelineEditor({ id }: { id: string }) {
  const pipeline = usePipeline(id);
  const asked = Number(useSearchParams().get('version'));
  if (pipeline.isPending) return <Loading label="Loading the pipeline…" />;
  if (pipeline.data === undefined) return <ErrorState what="the pipeline" error={pipeline.error} onRetry={() => void pipeline.refetch()} />;
  const p = pipeline.data;
  const version = p.versions?.some((v) => v.version === asked) ? asked : p.latestVersion;
  return <PipelineBuilder key={`${p.id}`} pipeline={p} version={version} />;
}
