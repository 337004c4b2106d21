'use client';
import type { JobMetrics } from '@keyflow/api';
import { nodeSourceLag } from './sourceLag';

/** A broker source's backlog on its node (messages, bytes or time behind), each split's in the tooltip. */
export function NodeSourceLag({ vertexId, metrics }: { vertexId: string; metrics: JobMetrics['vertices'][string] | undefined }) {
  const lag = nodeSourceLag(metrics?.sourceLag);
  if (!lag) return null;
  return (
    <div className={`op-lag${lag.behind ? ' behind' : ''}`} data-testid={`source-lag-${vertexId}`} title={lag.title}>
      backlog {lag.text}
    </div>
  );
}
