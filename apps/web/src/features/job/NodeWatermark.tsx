'use client';
import type { JobMetrics } from '@keyflow/api';
import { useNow } from '@/lib/useNow';
import { nodeWatermark } from './watermarks';

/**
 * An operator's low watermark on its node, and how far it trails the wall clock (not where its event time is a
 * generated source's own clock); nothing before it has one.
 */
export function NodeWatermark({
  vertexId,
  metrics,
  ownClock,
}: {
  vertexId: string;
  metrics: JobMetrics['vertices'][string] | undefined;
  ownClock?: boolean;
}) {
  const now = useNow();
  const wm = nodeWatermark(metrics, now, { ownClock });
  // An empty line while there is none: the node keeps its height as watermarks come and go (a rescale's new subtasks).
  if (!wm) return <div className="op-watermark" data-testid={`watermark-${vertexId}`} data-status="none" />;
  return (
    <div
      className={`op-watermark wm-${wm.status}`}
      data-testid={`watermark-${vertexId}`}
      data-status={wm.status}
      data-watermark={wm.value}
      title={wm.title ?? (wm.status === 'idle' ? 'every subtask is idle: it holds no watermark back' : 'its input ended: every window has fired')}
    >
      {wm.status === 'active' ? `wm ${wm.text}` : wm.text}
      {wm.lag && <span className="wm-lag"> · lag {wm.lag}</span>}
    </div>
  );
}
