'use client';
import type { JobDetail } from '@keyflow/api';
import { graphSchema, ownClockVertices } from '@keyflow/core';
import { Background, Controls, MarkerType, ReactFlow, ReactFlowProvider, type NodeChange } from '@xyflow/react';
import { useCallback, useMemo, useState } from 'react';
import { fromGraph, type PartitionEdge } from '@/features/builder/builderGraph';
import { layoutDoc } from '@/features/builder/layout';
import { edgeTypes } from '@/features/builder/edges';
import { formatRate } from '@/lib/format';
import { RESCALABLE_STATES } from '@/lib/queries';
import { backpressureColor, backpressureLevel, busyColor } from './backpressure';
import { jobNodeTypes, type JobNode } from './JobOperatorNode';
import { sliderLimits } from './scaling';
import { culprits, jobChains, stalledOperators } from './stall';

/**
 * The job's graph, read-only: each operator's parallelism (and the one it converges to), live rates and
 * backpressure, and the operators that hold a stalled job up; edges coloured by the backpressure of their producer.
 */
function Graph({ job, selected, onSelect }: { job: JobDetail; selected?: string; onSelect: (vertexId?: string) => void }) {
  // Laid out afresh, as Flink does, with room on every edge for its partitioning and rate, and between operators
  // of one rank for what a job's node shows (live figures, badges, the slider and its notes).
  const base = useMemo(() => layoutDoc(fromGraph(job.graph).doc, { ranksep: 150, nodeHeight: 190 }), [job.graph]);
  const running = job.state === 'RUNNING' || job.state === 'RESCALING';
  const ownClock = useMemo(() => {
    const parsed = graphSchema.safeParse(job.graph);
    return parsed.success ? ownClockVertices(parsed.data) : new Set<string>();
  }, [job.graph]);
  const stalled = useMemo(() => job.stall && stalledOperators(culprits(job.stall, jobChains(job.graph, job.plan))), [job.stall, job.graph, job.plan]);
  // The nodes are rebuilt on every metrics event: they carry the sizes React Flow measured, or it would hide
  // them again until it measures anew.
  const [measured, setMeasured] = useState<Record<string, { width: number; height: number }>>({});
  const onNodesChange = useCallback((changes: NodeChange<JobNode>[]) => {
    const sizes = changes.flatMap((c) => (c.type === 'dimensions' && c.dimensions ? [[c.id, c.dimensions] as const] : []));
    if (sizes.length) setMeasured((m) => ({ ...m, ...Object.fromEntries(sizes) }));
  }, []);

  const nodes: JobNode[] = base.nodes.map((n) => {
    const plan = job.plan.vertices[n.id];
    const parallelism = plan?.parallelism ?? n.data.vertex.parallelism;
    const desired = job.desiredParallelism[n.id];
    return {
      ...n,
      measured: measured[n.id],
      selected: n.id === selected,
      draggable: false,
      connectable: false,
      data: {
        ...n.data,
        ...(desired !== undefined && desired !== parallelism && { target: desired }),
        ...(stalled?.has(n.id) && { stalled: stalled.get(n.id) }),
        live: {
          metrics: job.metrics?.vertices[n.id],
          parallelism,
          maxParallelism: plan?.maxParallelism,
          jobId: job.id,
          scaling: sliderLimits(job.graph, job.plan, n.id),
          // The control plane queues a rescale asked for while the job is scheduled or recovers too.
          rescalable: RESCALABLE_STATES.includes(job.state),
          guarantee: job.sinkGuarantees[n.id],
          ownClock: ownClock.has(n.id),
        },
      },
    };
  });
  const edges: PartitionEdge[] = base.edges.map((e) => {
    const producer = job.metrics?.vertices[e.source];
    const level = backpressureLevel(producer?.backpressure);
    const color = running ? backpressureColor[level] : '#9aa5b1';
    return {
      ...e,
      animated: running && (producer?.recordsOutPerSec ?? 0) > 0,
      style: { stroke: color, strokeWidth: level === 'ok' ? 2 : 3 },
      markerEnd: { type: MarkerType.ArrowClosed, color },
      label: `${e.label}${running && producer ? ` · ${formatRate(producer.recordsOutPerSec)}` : ''}`,
      className: `edge-bp-${level}`,
    };
  });

  return (
    <ReactFlow
      nodes={nodes}
      edges={edges}
      nodeTypes={jobNodeTypes}
      edgeTypes={edgeTypes}
      onNodesChange={onNodesChange}
      nodesDraggable={false}
      nodesConnectable={false}
      elementsSelectable
      onNodeClick={(_, n) => onSelect(n.id === selected ? undefined : n.id)}
      onPaneClick={() => onSelect(undefined)}
      fitView
      fitViewOptions={{ padding: 0.2, maxZoom: 1.1 }}
      proOptions={{ hideAttribution: true }}
      deleteKeyCode={null}
    >
      <Background gap={20} />
      <Controls showInteractive={false} />
    </ReactFlow>
  );
}

export function JobGraph(props: { job: JobDetail; selected?: string; onSelect: (vertexId?: string) => void }) {
  return (
    <div className="job-graph" data-testid="job-graph">
      <ReactFlowProvider>
        <Graph {...props} />
      </ReactFlowProvider>
      <div className="legend">
        backpressure:
        {(['ok', 'low', 'high'] as const).map((l) => (
          <span key={l}>
            <span className="swatch" style={{ background: backpressureColor[l] }} />{' '}
            {l === 'ok' ? 'OK ≤ 10%' : l === 'low' ? 'LOW ≤ 50%' : 'HIGH > 50%'}
          </span>
        ))}
        <span title="share of time an operator's busiest subtask was neither waiting for input nor on full output channels">
          busy: 0%{' '}
          <span className="swatch wide" style={{ background: `linear-gradient(to right, ${busyColor(0)}, ${busyColor(0.5)}, ${busyColor(1)})` }} />{' '}
          100%
        </span>
      </div>
    </div>
  );
}
